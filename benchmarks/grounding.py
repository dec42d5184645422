"""Figure grounding on the synthetic source: tampered backs caught, clean backs never flagged.

Writes ``--problems`` synthetic problems, each as a semantic_back and a solution_back trace by the
scene teacher (its default misread rate: a share of traces misread a value and correct it in the
back). Every clean trace is validated with the problem's scene facts: a false alarm is a clean trace
flagged ``back_contradicts_figure``, and every clean trace must be accepted.

Then each clean trace whose first pass read every value right gets one tampered copy: in its back,
either one number (not part of a name such as "Week 1") is changed to a wrong one (±1, ±2, ± the
gridline step, +10), or one name is swapped for another of the same kind whose value differs (a bar,
point, row or column label, a side or a vertex, a colour or shape of a counted category); the rest of
the trace is left as is. Prints how many tampered traces are rejected as ``back_contradicts_figure``,
per family and per kind of tampering, and the speed of the check.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/grounding.py [--problems 5000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter
from itertools import islice

from lbdata.records import Problem
from lbdata.sources.synthetic import SyntheticSource
from lbdata.sources.synthetic.facts import (
    COUNT_COLOURS,
    COUNT_SHAPES,
    BarChartFacts,
    CountingFacts,
    GeometryFacts,
    LinePlotFacts,
    SceneFacts,
    TableFacts,
    scene_facts,
)
from lbdata.teachers.scene import write_trace
from lbdata.validate import parse_trace, validate_trace
from lbdata.validate.grounding import figure_contradictions

_NUM_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")


def _family(p: Problem) -> str:
    return p.meta["family"] if p.meta["family"] != "multiple_choice" else p.meta["scene"]["base_family"]


def _label_spans(back: str, facts: SceneFacts) -> list[tuple[int, int]]:
    """Character spans of names that contain digits ("Week 1", "2019", "x = 3"): numbers there are labels."""
    names: list[str] = []
    if isinstance(facts, BarChartFacts):
        names = [b.label for b in facts.bars]
    elif isinstance(facts, LinePlotFacts):
        names = (
            [f"x = {p.x}" for p in facts.points]
            if facts.series == "linear"
            else [p.label for p in facts.points]
        )
    elif isinstance(facts, TableFacts):
        names = list(facts.columns) + list(facts.cells)
    spans = []
    for name in names:
        if any(c.isdigit() for c in name):
            spans += [(m.start(), m.end()) for m in re.finditer(rf"(?<![\w]){re.escape(name)}(?![\w])", back)]
    return spans


def tamper_number(back: str, facts: SceneFacts, rng: random.Random) -> str | None:
    labels = _label_spans(back, facts)
    found = [m for m in _NUM_RE.finditer(back) if not any(a <= m.start() < b for a, b in labels)]
    if not found:
        return None
    m = rng.choice(found)
    v = float(m.group())
    step = facts.step or 1
    options = {v + 1, v - 1, v + 2, v - 2, v + step, v - step, v + 10} - {v}
    if v >= 0:
        options = {o for o in options if o >= 0}
    new = rng.choice(sorted(options))
    text = f"{new:g}" if "." not in m.group() else f"{new:.{len(m.group().split('.')[1])}f}"
    return back[: m.start()] + text + back[m.end() :]


def _swap(back: str, pattern: str, choices: dict[str, list[str]], rng: random.Random) -> str | None:
    """Replace one match of ``pattern`` (group 1) by one of ``choices[match]``."""
    found = [m for m in re.finditer(pattern, back) if choices.get(m.group(1))]
    if not found:
        return None
    m = rng.choice(found)
    new = rng.choice(choices[m.group(1)])
    return back[: m.start(1)] + new + back[m.end(1) :]


def _alternation(names: list[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


def tamper_label(back: str, facts: SceneFacts, rng: random.Random) -> str | None:
    if isinstance(facts, BarChartFacts):
        by = {b.label: b.value for b in facts.bars}
        choices = {a: [b for b in by if by[b] != by[a]] for a in by}
        return _swap(back, rf"(?<![\w])({_alternation(list(by))})(?![\w])", choices, rng)
    if isinstance(facts, LinePlotFacts):
        if facts.series == "linear":
            ys = {str(p.x): p.y for p in facts.points}
            choices = {x: [o for o in ys if ys[o] != ys[x]] for x in ys}
            return _swap(back, r"x = (-?\d+)", choices, rng)
        ys = {p.label: p.y for p in facts.points}
        choices = {a: [b for b in ys if ys[b] != ys[a]] for a in ys}
        return _swap(back, rf"(?<![\w])({_alternation(list(ys))})(?![\w])", choices, rng)
    if isinstance(facts, TableFacts):
        rows, cols = facts.cells, list(facts.columns)
        choices = {r: [o for o in rows if all(rows[o][c] != rows[r][c] for c in cols)] for r in rows}
        choices.update({c: [o for o in cols if all(rows[r][o] != rows[r][c] for r in rows)] for c in cols})
        return _swap(back, rf"(?<![\w])({_alternation(list(rows) + cols)})(?![\w])", choices, rng)
    if isinstance(facts, GeometryFacts):
        sides = {s: v for s, v in facts.sides.items()}
        side_choices = {}
        for s, v in sides.items():
            others = [o for o, w in sides.items() if abs(w - v) > 1e-6]
            side_choices[s] = others
            side_choices[s[::-1]] = others
        angle_choices = {
            x: [o for o in facts.angles if abs(facts.angles[o] - facts.angles[x]) > 1e-6]
            for x in facts.angles
        }
        text = _swap(back, r"(?<![A-Za-z])([A-Z]{2})(?![A-Za-z])", side_choices, rng)
        if text is None or (angle_choices and rng.random() < 0.5):
            alt = _swap(back, r"(?:vertex|angle at|corner at|mark at) ([A-Z])\b", angle_choices, rng)
            text = alt or text
        return text
    if isinstance(facts, CountingFacts):
        # a colour or shape inside a counted category: "red circles" -> "blue circles"
        pattern = rf"\b({'|'.join(COUNT_COLOURS)}) ({'|'.join(COUNT_SHAPES)}|object|shape)s?\b"
        found = list(re.finditer(pattern, back))
        rng.shuffle(found)
        for m in found:
            colour, shape = m.group(1), m.group(2)
            match = {"shape": shape} if shape in COUNT_SHAPES else {}
            n = facts.count(colour=colour, **match)
            if rng.random() < 0.5 and shape in COUNT_SHAPES:
                others = [s for s in COUNT_SHAPES if facts.count(colour=colour, shape=s) != n]
                if others:
                    return back[: m.start(2)] + rng.choice(others) + back[m.end(2) :]
            others = [c for c in COUNT_COLOURS if facts.count(colour=c, **match) != n]
            if others:
                return back[: m.start(1)] + rng.choice(others) + back[m.end(1) :]
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=5000, help="problems; two clean traces each")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    clean = Counter()
    false_alarm = Counter()
    not_accepted = Counter()
    tampered: Counter[tuple[str, str]] = Counter()
    caught: Counter[tuple[str, str]] = Counter()
    missed_examples: list[str] = []
    check_s = 0.0
    checked_backs = 0
    source = SyntheticSource(seed=args.seed)
    for i, row in enumerate(islice(source, args.problems)):
        p = row.problem
        facts = scene_facts(p.meta)
        family = _family(p)
        for variant in ("semantic_back", "solution_back"):
            trace = write_trace(p, variant, seed=i)
            v = validate_trace(
                trace.text,
                variant=variant,
                gold=p.answer,
                question=p.question,
                choices=p.choices,
                facts=facts,
            )
            clean[family] += 1
            false_alarm[family] += "back_contradicts_figure" in v.reasons
            not_accepted[family] += not v.accepted
            back = parse_trace(trace.text).backs[0]
            t0 = time.perf_counter()
            figure_contradictions(back.text, facts)
            check_s += time.perf_counter() - t0
            checked_backs += 1
            if trace.misread:
                continue
            kind = rng.choice(("number", "label"))
            new_back = (tamper_number if kind == "number" else tamper_label)(back.text, facts, rng)
            if new_back is None and kind == "label":
                kind, new_back = "number", tamper_number(back.text, facts, rng)
            if new_back is None or new_back == back.text:
                continue
            text = trace.text[: back.span[0]] + f"<back>{new_back}</back>" + trace.text[back.span[1] :]
            tv = validate_trace(
                text, variant=variant, gold=p.answer, question=p.question, choices=p.choices, facts=facts
            )
            tampered[(family, kind)] += 1
            hit = "back_contradicts_figure" in tv.reasons
            caught[(family, kind)] += hit
            if not hit and len(missed_examples) < 8:
                missed_examples.append(f"{family}/{kind}: {new_back.strip()}")

    families = sorted(clean)
    print(
        f"## Figure grounding ({sum(clean.values())} clean traces from {args.problems} problems, seed {args.seed})\n"
    )
    print(
        "| family | clean traces | accepted | false alarms | tampered (number) | caught | tampered (label) "
        "| caught | caught % |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for f in [*families, "all"]:
        fams = families if f == "all" else [f]
        n = sum(clean[x] for x in fams)
        acc = n - sum(not_accepted[x] for x in fams)
        fa = sum(false_alarm[x] for x in fams)
        tn, cn = sum(tampered[(x, "number")] for x in fams), sum(caught[(x, "number")] for x in fams)
        tl, cl = sum(tampered[(x, "label")] for x in fams), sum(caught[(x, "label")] for x in fams)
        share = (cn + cl) / (tn + tl) if tn + tl else 0.0
        name = f"**{f}**" if f == "all" else f
        print(f"| {name} | {n} | {acc} | {fa} | {tn} | {cn} | {tl} | {cl} | {share:.2%} |")
    print(f"\ncheck speed: {checked_backs / check_s:,.0f} backs/s (figure_contradictions alone, one core)")
    if missed_examples:
        print("\nmissed (first few):")
        for ex in missed_examples:
            print(f"- {ex}")


if __name__ == "__main__":
    main()
