"""The scene teacher: writes Look-Back traces from the synthetic source's scene facts, offline.

For each problem a *plan* is made from ``problem.meta["scene"]``: the values to read off the figure
(each with the visual evidence that pins it down and the plausible ways to misread it) and the
calculation that turns them into the answer. The plan is then written out in the requested shape:

- ``semantic_back`` — the first think sets up the task and reads the figure; ``<back>`` re-examines
  the element the next step depends on, with concrete evidence; the second think finishes;
- ``solution_back`` — the first think reaches a candidate ("So the answer is X."); ``<back>`` checks
  every value against the figure; the second think confirms or corrects;
- ``plain`` — one think and the answer.

A share of the back traces (``misread_rate``, decided by the request seed) misread one value on the
first pass; the back catches it and the final answer is still the gold one. Wording is drawn from
the phrase bank (``prompts/scene/*.yaml``, loaded by ``lbdata.teachers.scene_phrases``) by the seed;
the plans per figure family live in ``lbdata.teachers.scene_plans``. Changing any phrase changes
``prompt_hash`` and so every trace id.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lbdata.errors import TeacherError
from lbdata.hashing import content_hash
from lbdata.records import Problem, TeacherInfo, Usage, parse_variant
from lbdata.sources.synthetic.facts import figure_scene
from lbdata.teachers.base import Teacher, TeacherResponse, TraceRequest
from lbdata.teachers.scene_phrases import Words, phrases
from lbdata.teachers.scene_plans import PLANNERS, Plan, Reading, _cap, _pick

VERSION = "scene-teacher-1"


@dataclass(frozen=True)
class SceneTrace:
    """A written trace and what happened in it (for tests and statistics)."""

    text: str
    misread: bool  # the first pass misread a value and the back corrected it
    candidate: str | None  # solution_back: the first think's candidate answer


def write_trace(problem: Problem, variant: str, seed: int, misread_rate: float = 0.2) -> SceneTrace:
    """Write one trace for ``problem`` in ``variant``; the same arguments always give the same text."""
    variant = parse_variant(variant)
    scene = problem.meta.get("scene")
    family, kind = problem.meta.get("family"), problem.meta.get("kind")
    if not isinstance(scene, dict) or family is None or kind is None:
        raise TeacherError(
            f"problem {problem.id} has no scene facts; the scene teacher only works with --source synthetic. "
            "For other sources use an OpenAI-compatible teacher (--teacher gpt-4o or --teacher openai:<model>)"
        )
    rng = Words(seed)
    wants_misread = variant != "plain" and rng.random() < misread_rate
    choices: list[str] | None = scene.get("choices") if family == "multiple_choice" else None
    family, scene = figure_scene(problem.meta)
    if family not in PLANNERS or not isinstance(scene, dict):
        raise TeacherError(f"problem {problem.id}: the scene teacher does not know the family {family!r}")
    writer = _Writer(PLANNERS[family](kind, scene), choices, rng, problem.answer)
    answer, _ = writer.plan.compute(writer.true_values, Words(0))
    expected = ("ABCD"[choices.index(answer)] if answer in choices else None) if choices else answer
    if expected != problem.answer:
        raise TeacherError(f"problem {problem.id}: the scene facts give {answer!r} but the gold answer is "
                           f"{problem.answer!r}; the problem was not made by this version of the synthetic source")
    misread = writer.pick_misread(answer) if wants_misread else None
    if variant == "plain":
        return writer.plain()
    if variant == "semantic_back":
        return writer.semantic_back(misread)
    return writer.solution_back(misread)


Misread = tuple[int, Any, str]  # (reading, wrong value, the answer it leads to)


class _Writer:
    """Writes one trace of a plan: every phrasing is drawn from ``rng`` in the order the text reads."""

    def __init__(self, plan: Plan, choices: list[str] | None, rng: Words, gold: str):
        self.plan, self.choices, self.rng, self.gold = plan, choices, rng, gold
        self.true_values = [r.value for r in plan.readings]

    def pick_misread(self, answer: str) -> Misread | None:
        """A plausible misreading that changes the answer (to another option, for multiple choice)."""
        plan, choices = self.plan, self.choices
        options = []
        for i, r in enumerate(plan.readings):
            for w in r.misreads:
                vals = list(self.true_values)
                vals[i] = w
                wrong_answer, _ = plan.compute(vals, Words(0))
                if not wrong_answer or wrong_answer == answer or (choices and wrong_answer not in choices):
                    continue
                options.append((i, w, wrong_answer))
        return self.rng.choice(options) if options else None

    def letter(self, value: str) -> str:
        return "ABCD"[self.choices.index(value)] if self.choices else value

    def reads(self, values: list[Any]) -> list[str]:
        out = []
        for i, r in enumerate(self.plan.readings):
            fields = dict(r.fields)
            if "cat_one" in fields:  # counts agree in number with the value stated
                fields["cat"] = fields["cat_one"] if values[i] == 1 else fields["cat_pl"]
            out.append(_pick(self.rng, r.read, name=r.name, shown=r.show(values[i]), **fields))
        return out

    def finish(self, values: list[Any]) -> tuple[str, list[str]]:
        """The answer from ``values`` and the sentences that compute it (and map it to a letter)."""
        result, work = self.plan.compute(values, self.rng)
        out = [work]
        if self.choices:
            out.append(_pick(self.rng, "choice", value=result, letter=self.letter(result)))
        return self.letter(result), out

    def evidence(self, r: Reading) -> str:
        return _pick(self.rng, self.rng.choice(r.evidence), name=r.name, shown=r.show(r.value), **r.fields)

    def opening(self, misread: Misread | None) -> tuple[list[str], list[Any]]:
        """The first sentences (set-up and goal) and the values the first pass reads."""
        first_values = list(self.true_values)
        if misread:
            first_values[misread[0]] = misread[1]
        return [_pick(self.rng, "open"), _pick(self.rng, self.plan.goal, **self.plan.goal_fields)], first_values

    def plain(self) -> SceneTrace:
        rng = self.rng
        opening, _ = self.opening(None)
        final_answer, work = self.finish(self.true_values)
        think = " ".join([*opening, *self.reads(self.true_values), *work, _pick(rng, "conclude", answer=final_answer)])
        return SceneTrace(f"<think> {think} </think>\n\\boxed{{{self.gold}}}", False, None)

    def semantic_back(self, misread: Misread | None) -> SceneTrace:
        rng, plan = self.rng, self.plan
        opening, first_values = self.opening(misread)
        focus = misread[0] if misread else rng.choice(plan.focus)
        r = plan.readings[focus]
        think1 = " ".join([*opening, *self.reads(first_values), _pick(rng, "bridge", name=r.name)])
        shown, wrong = r.show(r.value), r.show(misread[1]) if misread else ""
        back = f"{_pick(rng, 'back_open')} {self.evidence(r)}"
        if misread:
            back += _pick(rng, "correct", shown=shown, wrong=wrong)
            note = r.notes.get(misread[1])
            if note:
                back += f" {_cap(note)}."
            lead = _pick(rng, "continue_fixed", name=r.name, shown=shown, wrong=wrong)
        else:
            back += _pick(rng, "confirm", shown=shown)
            lead = _pick(rng, "continue", name=r.name, shown=shown)
        final_answer, work = self.finish(self.true_values)
        think2 = " ".join([lead, *work, _pick(rng, "conclude", answer=final_answer)])
        return SceneTrace(_shape(think1, back, think2, self.gold), misread is not None, None)

    def solution_back(self, misread: Misread | None) -> SceneTrace:
        rng, plan = self.rng, self.plan
        opening, first_values = self.opening(misread)
        candidate, work1 = self.finish(first_values)
        think1 = " ".join([*opening, *self.reads(first_values), *work1, _pick(rng, "candidate", answer=candidate)])
        checks = [_pick(rng, "verify_open")]
        for i, r in enumerate(plan.readings):
            sentence = _cap(self.evidence(r))
            if misread and i == misread[0]:
                sentence += _pick(rng, "check_bad", wrong=r.show(misread[1]))
                note = r.notes.get(misread[1])
                if note:
                    sentence += f" {_cap(note)}."
            else:
                sentence += _pick(rng, "check_ok")
            checks.append(sentence)
        if misread:
            r = plan.readings[misread[0]]
            shown, wrong = r.show(r.value), r.show(misread[1])
            checks.append(_pick(rng, "verdict_bad", shown=shown, name=r.name, candidate=candidate))
            final_answer, work2 = self.finish(self.true_values)
            think2 = " ".join([_pick(rng, "rethink_fix", shown=shown, name=r.name, wrong=wrong), *work2,
                               f"So the answer is {final_answer}, not {candidate}."])
        else:
            checks.append(_pick(rng, "verdict_ok"))
            think2 = " ".join([_pick(rng, "rethink_ok", answer=candidate), _pick(rng, "conclude", answer=candidate)])
        return SceneTrace(_shape(think1, " ".join(checks), think2, self.gold), misread is not None, candidate)


def _shape(think1: str, back: str, think2: str, answer: str) -> str:
    return f"<think> {think1} </think>\n<back> {back} </back>\n<think> {think2} </think>\n\\boxed{{{answer}}}"


@lru_cache(maxsize=1)
def phrase_bank_hash() -> str:
    return content_hash({"version": VERSION, "phrases": phrases()})


class SceneTeacher(Teacher):
    """Offline teacher for the synthetic source: traces written from the scene facts."""

    name = "scene"

    def __init__(self, misread_rate: float = 0.2, model: str = "scene-v1"):
        if not 0.0 <= misread_rate <= 1.0:
            raise TeacherError(f"misread_rate must be between 0 and 1, got {misread_rate}")
        self.misread_rate = float(misread_rate)
        self.model = model

    @property
    def info(self) -> TeacherInfo:
        return TeacherInfo(backend="scene", model=self.model, params={"misread_rate": self.misread_rate})

    def prompt_hash(self, variant: str, mode: str) -> str:
        return content_hash({"bank": phrase_bank_hash(), "variant": parse_variant(variant), "mode": mode})

    def write(self, problem: Problem, variant: str, seed: int) -> SceneTrace:
        return write_trace(problem, variant, seed, self.misread_rate)

    async def generate(self, request: TraceRequest) -> TeacherResponse:
        if request.mode != "write":
            raise TeacherError(
                "the scene teacher writes whole traces only; use --mode write, or an OpenAI-compatible "
                "teacher for insert mode"
            )
        trace = self.write(request.problem, request.variant, request.seed)
        return TeacherResponse(text=trace.text, usage=Usage(), finish_reason="stop")
