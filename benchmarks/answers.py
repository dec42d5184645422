"""Differential testing of ``answers_match`` against plain math-verify.

Builds a pair corpus from ``tests/data/answer_table.tsv`` and mechanical variants of every row:

- ``table``      the row as written;
- ``boxed``      the prediction inside ``\\boxed{}``;
- ``prose``      the prediction at the end of a short worked response ("… The answer is X.");
- ``boxed_prose`` the prediction boxed at the end of a worked response;
- ``redressed``  a numeric prediction written another way (digit groups, trailing zeros, ``\\dfrac``,
  scientific notation, a Unicode minus) — same label;
- ``reordered``  the items of an unordered answer (sets, solution lists) in reverse order, or the two
  sides of an equation swapped — same label;
- ``perturbed``  a correct prediction with its last digit changed — label "no match".

Both checkers grade every pair; plain math-verify is ``verify(parse(gold), parse(pred))`` with its
default configs, in the main thread, a bare answer wrapped in ``\\boxed{}`` first (the kindest way to
call it). Every disagreement is printed, grouped by family, variant and direction, with the README
policy row that explains it. A disagreement where ``answers_match`` also disagrees with the label is
an unexplained bug: the run lists them last and exits 1 when there is any.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/answers.py [--limit N] [--quiet]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "tests" / "data" / "answer_table.tsv"
NEWLINE_MARK = "⏎"
"""Stands for a line break inside a table cell (the table is one pair per line)."""

POLICY = {
    "mc": "letters",
    "letter_text": "letters",
    "hedge": "hedges",
    "yesno": "yes/no and text",
    "text": "yes/no and text",
    "units": "units",
    "degrees": "units",
    "percent": "percent",
    "thousands": "numbers in every dress",
    "mixed": "numbers in every dress",
    "scientific": "numbers in every dress",
    "number_words": "numbers in every dress",
    "repeating": "numbers in every dress",
    "unicode": "numbers in every dress",
    "value": "value over form",
    "expr": "value over form",
    "latex": "presentation",
    "decimal": "tolerance",
    "tolerance": "tolerance",
    "assign": "equations and labelled values",
    "equation": "equations and labelled values",
    "labelled": "equations and labelled values",
    "point": "equations and labelled values",
    "solutions": "lists and sets",
    "sets": "lists and sets",
    "tuples": "brackets",
    "intervals": "brackets",
    "matrix": "matrices",
    "inequality": "inequalities",
    "union": "inequalities",
    "ratio": "ratios and times",
    "time": "ratios and times",
    "extract": "extraction",
    "long": "extraction",
}
"""Answer family → the row of the README policy table that says how ``answers_match`` treats it."""


@dataclass(frozen=True)
class Pair:
    kind: str
    variant: str
    gold: str
    pred: str
    expected: bool
    choices: tuple[str, ...] | None


def load_answer_table(path: Path = TABLE) -> list[Pair]:
    """The labelled rows of the answer table (``kind, gold, pred, expected, choices, note``)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("kind\t"):
            continue
        kind, gold, pred, expected, choices, _note = line.replace(NEWLINE_MARK, "\n").split("\t")
        opts = tuple(c.strip() for c in choices.split(" | ")) if choices else None
        rows.append(Pair(kind, "table", gold, pred, expected == "1", opts))
    return rows


def _redress(pred: str) -> str | None:
    """The same number written another way, or None when ``pred`` is no plain number."""
    from lbdata.validate.normalize import simple_number

    num = simple_number(pred)
    if num is None or pred.strip() != pred or not re.fullmatch(r"[-\d.,/]+", pred):
        return None
    v = num.value
    if v.denominator == 1:
        n = int(v)
        if abs(n) >= 10_000:
            return f"{n:,}"
        if n < 0:
            return "−" + str(-n)
        return f"{n}.0" if n % 10 else f"{n // 10}\\times 10^{{1}}" if n else "0.0"
    if num.decimals is not None:
        return None  # another zero would claim a precision the row does not have
    return f"\\dfrac{{{v.numerator}}}{{{v.denominator}}}"


def _reorder(pair: Pair) -> str | None:
    from lbdata.validate.normalize import alternatives, is_equation

    if pair.kind in ("solutions", "sets"):
        body, wrap = pair.pred, ("", "")
        if body.startswith("\\{") and body.endswith("\\}"):
            body, wrap = body[2:-2], ("\\{", "\\}")
        items, by_or = alternatives(body)
        if len(items) > 1 and "\\pm" not in body:
            return wrap[0] + (" or " if by_or else ", ").join(reversed(items)) + wrap[1]
    if pair.kind in ("equation", "assign", "labelled") and is_equation(pair.pred) and pair.expected:
        left, right = pair.pred.split("=")
        return f"{right.strip()} = {left.strip()}"
    return None


def _perturb(pred: str) -> str | None:
    digits = [m.start() for m in re.finditer(r"\d", pred)]
    if not digits or "\n" in pred or len(pred) > 60 or "\\approx" in pred:  # the exact form is the answer
        return None
    i = digits[-1]
    return pred[:i] + str((int(pred[i]) + 1) % 10) + pred[i + 1 :]


def variants(rows: list[Pair]) -> list[Pair]:
    """The table plus its mechanical variants (see the module docstring)."""
    out: list[Pair] = []
    seen: set[tuple[str, str, tuple[str, ...] | None]] = set()

    def add(p: Pair) -> None:
        key = (p.gold, p.pred, p.choices)
        if key not in seen:
            seen.add(key)
            out.append(p)

    for r in rows:
        add(r)
        one_line = "\n" not in r.pred and "\\boxed" not in r.pred and r.kind not in ("extract", "long")
        if one_line:
            add(Pair(r.kind, "boxed", r.gold, f"\\boxed{{{r.pred}}}", r.expected, r.choices))
            add(
                Pair(
                    r.kind,
                    "prose",
                    r.gold,
                    f"We work it out step by step.\nThe answer is {r.pred}.",
                    r.expected,
                    r.choices,
                )
            )
            add(
                Pair(
                    r.kind,
                    "boxed_prose",
                    r.gold,
                    f"First we read the figure, then we compute.\n\nFinal answer: $\\boxed{{{r.pred}}}$",
                    r.expected,
                    r.choices,
                )
            )
        dressed = _redress(r.pred)
        if dressed is not None and dressed != r.pred:
            add(Pair(r.kind, "redressed", r.gold, dressed, r.expected, r.choices))
        reordered = _reorder(r)
        if reordered is not None and reordered != r.pred:
            add(Pair(r.kind, "reordered", r.gold, reordered, r.expected, r.choices))
        if r.expected and r.kind not in ("mc", "letter_text", "yesno", "text", "hedge"):
            perturbed = _perturb(r.pred)
            if perturbed is not None and perturbed != r.pred:
                add(Pair(r.kind, "perturbed", r.gold, perturbed, False, r.choices))
    return out


def _mv_input(text: str) -> str:
    """How math-verify is called on one side: a bare answer boxed, a response as it is."""
    if "\n" in text or "\\boxed" in text or "$" in text or "\\[" in text or len(text) > 80:
        return text
    return f"\\boxed{{{text}}}"


def math_verify_plain(gold: str, pred: str) -> bool:
    """Plain math-verify with its default configs (main thread: its own time limit works)."""
    from math_verify import parse, verify

    try:
        return bool(verify(parse(_mv_input(gold)), parse(_mv_input(pred))))
    except Exception:  # noqa: BLE001 - a library failure is a "no match", as math-verify itself returns
        return False


@dataclass
class Result:
    pair: Pair
    ours: bool
    theirs: bool


def run(pairs: list[Pair]) -> tuple[list[Result], float, float]:
    """Grade every pair with both checkers; returns results and the seconds each took (memo off)."""
    from lbdata.validate.answers import answers_match, reset_answer_stats

    logging.disable(logging.WARNING)
    answers_match("1", "x+1")  # the sympy worker is up before timing
    ours = []
    t0 = time.perf_counter()
    for p in pairs:
        reset_answer_stats(clear_memo=True)
        ours.append(answers_match(p.gold, p.pred, choices=p.choices))
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = [math_verify_plain(p.gold, p.pred) for p in pairs]
    t_theirs = time.perf_counter() - t0
    return [Result(p, a, b) for p, a, b in zip(pairs, ours, theirs, strict=True)], t_ours, t_theirs


def unexplained(results: list[Result]) -> list[Result]:
    """Disagreements with math-verify where ``answers_match`` is also against the label."""
    return [r for r in results if r.ours != r.theirs and r.ours != r.pair.expected]


def _short(text: str, n: int = 70) -> str:
    text = text.replace("\n", NEWLINE_MARK)
    return text if len(text) <= n else text[: n - 20] + " … " + text[-17:]


def report(results: list[Result], t_ours: float, t_theirs: float, *, quiet: bool = False) -> int:
    n = len(results)
    print(
        f"## answers_match against plain math-verify on {n} pairs "
        f"({sum(r.pair.variant == 'table' for r in results)} table rows + mechanical variants)\n"
    )
    print("| checker | agreement with labels | false positives | false negatives | pairs/s (memo off) |")
    print("|---|---:|---:|---:|---:|")
    for name, attr, secs in (("answers_match", "ours", t_ours), ("math-verify (plain)", "theirs", t_theirs)):
        got = [getattr(r, attr) for r in results]
        agree = sum(g == r.pair.expected for g, r in zip(got, results, strict=True))
        fp = sum(g and not r.pair.expected for g, r in zip(got, results, strict=True))
        fn = sum(r.pair.expected and not g for g, r in zip(got, results, strict=True))
        print(f"| {name} | {agree}/{n} ({agree / n:.1%}) | {fp} | {fn} | {n / secs:,.0f} |")
    groups: dict[tuple[str, str, str], list[Result]] = defaultdict(list)
    for r in results:
        if r.ours != r.theirs:
            direction = "lbdata yes, math-verify no" if r.ours else "lbdata no, math-verify yes"
            groups[(POLICY.get(r.pair.kind, r.pair.kind), r.pair.kind, direction)].append(r)
    print(f"\n## Disagreements: {sum(map(len, groups.values()))} pairs in {len(groups)} groups\n")
    print("| policy row (README) | family | direction | pairs | label sides with |")
    print("|---|---|---|---:|---|")
    for (policy, kind, direction), rs in sorted(groups.items()):
        ours_right = sum(r.ours == r.pair.expected for r in rs)
        side = (
            "lbdata" if ours_right == len(rs) else f"lbdata {ours_right}, math-verify {len(rs) - ours_right}"
        )
        print(f"| {policy} | {kind} | {direction} | {len(rs)} | {side} |")
    if not quiet:
        for (policy, kind, direction), rs in sorted(groups.items()):
            print(f"\n### {policy} / {kind}: {direction}\n")
            for r in rs:
                mark = "" if r.ours == r.pair.expected else "  <-- UNEXPLAINED"
                print(
                    f"- [{r.pair.variant}] gold `{_short(r.pair.gold)}` pred `{_short(r.pair.pred)}` "
                    f"label {'match' if r.pair.expected else 'no match'}{mark}"
                )
    bad = unexplained(results)
    print(f"\nunexplained disagreements (lbdata against the label): {len(bad)}")
    for r in bad:
        print(f"- [{r.pair.kind}/{r.pair.variant}] gold `{_short(r.pair.gold)}` pred `{_short(r.pair.pred)}`")
    return 1 if bad else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=0, help="grade only the first N pairs of the corpus")
    ap.add_argument("--quiet", action="store_true", help="print the group table only, not every pair")
    args = ap.parse_args()
    pairs = variants(load_answer_table())
    if args.limit:
        pairs = pairs[: args.limit]
    results, t_ours, t_theirs = run(pairs)
    sys.exit(report(results, t_ours, t_theirs, quiet=args.quiet))


if __name__ == "__main__":
    main()
