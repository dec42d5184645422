"""The scene teacher: Look-Back traces written from scene facts, in the exact shape, always ending in gold."""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest

from lbdata.errors import ConfigError, TeacherError
from lbdata.records import Problem
from lbdata.sources.synthetic import SyntheticSource
from lbdata.teachers import load_teacher
from lbdata.teachers import scene as scene_module
from lbdata.teachers.base import TraceRequest
from lbdata.teachers.scene import SceneTeacher, write_trace
from lbdata.teachers.scene_phrases import load_phrases, phrases
from lbdata.validate import validate_trace

BACK_SHAPE = re.compile(
    r"\A<think> (?P<t1>[^<]+?) </think>\n<back> (?P<back>[^<]+?) </back>\n<think> (?P<t2>[^<]+?) </think>\n"
    r"\\boxed\{(?P<answer>.+)\}\Z"
)
PLAIN_SHAPE = re.compile(r"\A<think> (?P<t1>[^<]+?) </think>\n\\boxed\{(?P<answer>.+)\}\Z")


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return [row.problem for row in itertools.islice(SyntheticSource(seed=21), 240)]


def _words(text: str) -> list[str]:
    return re.findall(r"[\w^\\{}.'°-]+", text.lower())


def _share_of_5grams_seen(back: str, before: str) -> float:
    b, a = _words(back), _words(before)
    grams = [tuple(b[i:i + 5]) for i in range(len(b) - 4)]
    seen = {tuple(a[i:i + 5]) for i in range(len(a) - 4)}
    return sum(g in seen for g in grams) / max(len(grams), 1)


def test_semantic_back_shape_and_placement(problems):
    for i, p in enumerate(problems):
        t = write_trace(p, "semantic_back", seed=i)
        m = BACK_SHAPE.match(t.text)
        assert m, t.text
        assert t.text.count("\\boxed") == 1 and m["answer"] == p.answer
        t1, back, t2 = m["t1"], m["back"], m["t2"]
        assert len(t1.split()) >= 12 and len(back.split()) >= 8 and len(t2.split()) >= 5
        assert not re.search(r"answer is|final answer", t1, re.I), t1
        assert re.search(r"\d", back), "the back cites a concrete value"
        assert _share_of_5grams_seen(back, t1) < 0.3, (t1, back)


def test_solution_back_reaches_a_candidate_and_confirms_or_corrects_it(problems):
    corrected = 0
    for i, p in enumerate(problems):
        t = write_trace(p, "solution_back", seed=1000 + i, misread_rate=0.5)
        m = BACK_SHAPE.match(t.text)
        assert m and m["answer"] == p.answer, t.text
        assert re.search(rf"answer (is|should be) {re.escape(t.candidate)}\.\Z", m["t1"]), m["t1"]
        assert len(m["back"].split()) >= 8 and _share_of_5grams_seen(m["back"], m["t1"]) < 0.3
        if t.misread:
            corrected += 1
            assert t.candidate != p.answer
            assert f"not {t.candidate}" in m["t2"]
        else:
            assert t.candidate == p.answer
    assert corrected > 60


def test_plain_has_no_back_and_ends_in_gold(problems):
    for i, p in enumerate(problems):
        t = write_trace(p, "plain", seed=i)
        m = PLAIN_SHAPE.match(t.text)
        assert m and m["answer"] == p.answer and not t.misread, t.text


def test_every_trace_passes_the_validators(problems):
    """Both back variants, misread or not, and plain: all accepted by lbdata.validate."""
    rejected = []
    for i, p in enumerate(problems):
        for variant in ("semantic_back", "solution_back", "plain"):
            t = write_trace(p, variant, seed=7 * i + 3, misread_rate=0.5)
            v = validate_trace(t.text, variant=variant, gold=p.answer, question=p.question, choices=p.choices)
            if not v.accepted:
                rejected.append((p.id, variant, v.reasons, t.text))
            elif variant == "solution_back":
                assert v.scores.get("corrected", 0.0) == (1.0 if t.misread else 0.0)
    assert not rejected, rejected[:3]


def test_misread_share_follows_the_configured_rate(problems):
    for rate in (0.0, 0.2, 0.5):
        traces = [write_trace(p, v, seed=i, misread_rate=rate)
                  for i, p in enumerate(problems) for v in ("semantic_back", "solution_back")]
        share = sum(t.misread for t in traces) / len(traces)
        assert abs(share - rate) < 0.06, (rate, share)


def test_a_misreading_is_caught_by_the_back(problems):
    seen = 0
    for i, p in enumerate(problems):
        t = write_trace(p, "semantic_back", seed=i, misread_rate=1.0)
        if not t.misread:
            continue
        seen += 1
        back = BACK_SHAPE.match(t.text)["back"]
        assert re.search(r"not|misread|rather than|wrong", back), back
    assert seen > 200


def test_multiple_choice_maps_the_value_to_the_letter():
    src = SyntheticSource(seed=4, families=["multiple_choice"])
    for row in itertools.islice(src, 30):
        p = row.problem
        value = p.choices["ABCD".index(p.answer)]
        for variant in ("semantic_back", "solution_back", "plain"):
            text = write_trace(p, variant, seed=5).text
            assert text.endswith(f"\\boxed{{{p.answer}}}")
            assert re.findall(r"\(([ABCD])\)", text)[-1] == p.answer, "the last option named is the gold one"
            assert value in text


def test_same_seed_same_text_and_wording_varies(problems):
    p = problems[0]
    assert write_trace(p, "semantic_back", 42).text == write_trace(p, "semantic_back", 42).text
    assert len({write_trace(p, "semantic_back", s).text for s in range(20)}) >= 15
    bank = phrases()
    for key, options in bank.items():
        assert len(options) >= 4, f"the slot {key} needs at least four phrasings"
    generic = [k for k in bank if "." not in k]
    assert all(len(bank[k]) >= 5 for k in generic), "each shared slot has at least five phrasings"


def test_teacher_protocol_info_and_prompt_hash(problems, monkeypatch):
    teacher = load_teacher("scene")
    assert isinstance(teacher, SceneTeacher)
    assert teacher.info.backend == "scene" and teacher.info.params == {"misread_rate": 0.2}
    p = problems[3]
    response = asyncio.run(teacher.generate(TraceRequest(problem=p, images=[], variant="solution_back", seed=9)))
    assert response.text == write_trace(p, "solution_back", 9).text
    assert response.finish_reason == "stop" and response.usage.requests == 0
    h = teacher.prompt_hash("semantic_back", "write")
    assert h == SceneTeacher().prompt_hash("semantic", "write") and h != teacher.prompt_hash("plain", "write")
    monkeypatch.setitem(phrases(), "open", [*phrases()["open"], "A new way to begin."])
    scene_module.phrase_bank_hash.cache_clear()
    try:
        assert teacher.prompt_hash("semantic_back", "write") != h, "changing the wording changes trace ids"
    finally:
        scene_module.phrase_bank_hash.cache_clear()


def test_insert_mode_and_problems_without_scene_are_teacher_errors(problems):
    teacher = SceneTeacher()
    with pytest.raises(TeacherError, match="--mode write"):
        asyncio.run(teacher.generate(TraceRequest(problem=problems[0], images=[], variant="semantic_back",
                                                  mode="insert")))
    foreign = Problem(id="jsonl:1", images=[], question="What is 2+2?", answer="4", source="jsonl")
    with pytest.raises(TeacherError, match="--source synthetic.*--teacher gpt-4o"):
        asyncio.run(teacher.generate(TraceRequest(problem=foreign, images=[], variant="semantic_back")))
    with pytest.raises(TeacherError, match="misread_rate"):
        SceneTeacher(misread_rate=1.5)


def test_phrase_bank_is_the_yaml_files_and_its_hash_is_pinned():
    from lbdata.resources import resource_dir

    folder = resource_dir("prompts") / "scene"
    assert {p.stem for p in folder.glob("*.yaml")} >= {"shared", "bar_chart", "geometry", "counting"}
    assert load_phrases(folder) == phrases()
    assert phrases()["open"][0] == "Let me work through this step by step."
    # the bank moved from a Python table to YAML without changing a byte of what is hashed
    assert scene_module.phrase_bank_hash() == "80209f87c6ccc02f"
    assert SceneTeacher().prompt_hash("semantic_back", "write") == "f2cb064883f5be31"


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({}, "no phrase files"),
        ({"a.yaml": "open: [x\n"}, "a.yaml is not valid YAML"),
        ({"a.yaml": "- just a list\n"}, "a.yaml must be a mapping"),
        ({"a.yaml": "open: []\n"}, "slot 'open' must be a non-empty list of strings"),
        ({"a.yaml": "open: [1, 2]\n"}, "slot 'open' must be a non-empty list of strings"),
        ({"a.yaml": "open: [x]\n", "b.yaml": "open: [y]\n"}, "b.yaml: slot 'open' is also defined"),
    ],
)
def test_a_bad_phrase_file_is_a_config_error_naming_it(tmp_path, files, match):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_phrases(tmp_path)


def test_a_slot_missing_from_the_bank_is_a_config_error(monkeypatch):
    from lbdata.teachers.scene_phrases import Words

    monkeypatch.delitem(phrases(), "open")
    with pytest.raises(ConfigError, match="'open' is missing from prompts/scene"):
        Words(0).pick("open")
