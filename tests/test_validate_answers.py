"""answers_match: every row of the labelled answer table, time limits, threads and worker processes."""

from __future__ import annotations

import itertools
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from lbdata.validate import answers_match
from lbdata.validate.answers import answer_stats

TABLE = Path(__file__).parent / "data" / "answer_table.tsv"


def load_table() -> list[tuple[str, str, str, bool, list[str] | None, str]]:
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("kind\t"):
            continue
        kind, gold, pred, expected, choices, note = line.replace("⏎", "\n").split("\t")
        opts = [c.strip() for c in choices.split(" | ")] if choices else None
        rows.append((kind, gold, pred, expected == "1", opts, note))
    return rows


ROWS = load_table()


def test_table_is_large_and_covers_every_kind():
    kinds = {r[0] for r in ROWS}
    assert len(ROWS) >= 300
    assert {
        "mc",
        "yesno",
        "text",
        "units",
        "degrees",
        "thousands",
        "latex",
        "assign",
        "value",
        "decimal",
        "percent",
        "sets",
        "tuples",
        "intervals",
        "inequality",
        "hedge",
        "expr",
    } <= kinds
    assert sum(not r[3] for r in ROWS) >= 100  # plenty of false pairs


@pytest.mark.parametrize(
    ("kind", "gold", "pred", "expected", "choices", "note"), ROWS, ids=[f"{r[0]}:{r[1]}|{r[2]}" for r in ROWS]
)
def test_answer_table(kind, gold, pred, expected, choices, note):
    assert answers_match(gold, pred, choices=choices) is expected, note


def test_none_and_empty_never_match():
    assert answers_match("5", None) is False
    assert answers_match("5", "") is False
    assert answers_match("", "") is False
    assert answers_match("5", "\\boxed{}") is False


_fresh = itertools.count(1000)  # non-memoised warm-up expressions
PATHOLOGICAL = [
    "9^9^9^9",
    "9^{9^{9^{9}}}",
    "{" * 60 + "3" + "}" * 60,
    "(" * 200 + "1" + ")" * 200,
    "x" * 100_000,
    "1" * 100_000,
    "\\frac{" * 50 + "1" + "}{2}" * 50,
    "100000!",
    "(x+1)^{999} - (x+2)^{999}",
    "\\sin(x)^{200}+\\cos(x)^{200}+(x+y+z)^{60}",
]


@pytest.mark.parametrize("pred", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_inputs_return_false_within_the_limit(pred):
    answers_match("1", f"x+{next(_fresh)}")  # the sympy worker is up: its start-up is not part of the limit
    t0 = time.perf_counter()
    assert answers_match("3", pred, timeout_s=1.0) is False
    assert time.perf_counter() - t0 < 1.5


def test_timeout_is_counted_and_the_worker_recovers():
    before = answer_stats()["timeouts"]
    assert answers_match("3", "(x+1)^{998} - (x+3)^{998}", timeout_s=0.5) is False
    assert answer_stats()["timeouts"] == before + 1
    assert answers_match("2\\sqrt{3}", "\\sqrt{12}") is True  # a fresh worker answers the next call


def test_time_limit_holds_in_threads():
    results: dict[int, tuple[bool, float]] = {}

    def work(i: int) -> None:
        t0 = time.perf_counter()
        ok = answers_match("3", f"(x+{i})^{{997}} - (x+{i + 1})^{{997}}", timeout_s=1.0)
        results[i] = (ok, time.perf_counter() - t0)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(not t.is_alive() for t in threads)
    for ok, _elapsed in results.values():
        assert ok is False
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda p: answers_match("\\frac{1}{2}", p), ["2/4", "0.5", "1/3"])) == [
            True,
            True,
            False,
        ]


def _in_child(pred: str) -> tuple[bool, float]:
    answers_match(
        "1", f"x+{os.getpid()}"
    )  # start this process's own sympy worker (not memoised from the parent)
    t0 = time.perf_counter()
    ok = answers_match("3", pred, timeout_s=1.0)
    return ok, time.perf_counter() - t0


def test_time_limit_holds_in_worker_processes():
    with ProcessPoolExecutor(2) as pool:
        out = list(pool.map(_in_child, ["(x+1)^{996} - (x+2)^{996}", "\\sqrt{9}"]))
    assert out[0][0] is False and out[0][1] < 1.5
    assert out[1][0] is True


def test_memoised_pairs_do_not_reach_sympy_again():
    answers_match("\\frac{\\pi}{3}", "\\pi/3")
    before = answer_stats()
    for _ in range(100):
        assert answers_match("\\frac{\\pi}{3}", "\\pi/3")
    after = answer_stats()
    assert after["sympy"] == before["sympy"]
    assert after["memo_hits"] - before["memo_hits"] == 100
