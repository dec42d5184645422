"""``answers_match(gold, pred)``: does a response state the gold answer?

Layers, cheapest first; the first layer that can decide, decides. Every equality and inequality
between quoted answers below is a claim checked, both ways round, by ``tests/test_validate_answers.py``.

1. extraction (``normalize.final_answer``) — ``pred`` may be a whole response: the last ``\\boxed{}``
   (several boxes at the end are one answer: ``\\boxed{2}, \\boxed{3}`` = ``2, 3``), else the last
   ``<answer>…</answer>``, else a ``#### X`` line, else the last "answer is X" / "Answer: X" /
   "**Final answer:** X" / "答案是 X" (``The answer is 9`` = ``9``), else a closing
   ``\\[ … \\]`` block, else the last line (``Thus the total is 12.`` = ``12``). The last stated answer
   wins. The length guard (``MAX_ANSWER_CHARS``) applies to the extracted answer, not the response;
2. presentation is stripped (``normalize.clean``): ``\\boxed``, ``$``, ``\\text``/``\\mathrm``,
   ``\\left``/``\\right``, ``\\dfrac`` (``\\dfrac{1}{2}`` = ``\\tfrac12``), spacing, a trailing full stop;
3. hedges are wrong (``is_hedged``): words of doubt (``maybe 5`` ≠ ``5``, ``可能是5`` ≠ ``5``), several options
   (``(B) or (C)`` ≠ ``B``, ``B, C`` ≠ ``B``, ``B and C`` ≠ ``B``) and alternatives against a single
   gold (``5 or 6`` ≠ ``5``);
4. multiple choice — a gold letter is matched by ``B``, ``(B)``, ``B.``, ``Option B``, ``B: 12``; any
   other letter never matches (``C`` ≠ ``B``); a gold written as a letter and its option text matches
   the letter and the text (``C Cecile`` = ``C``, ``C Cecile`` = ``Cecile``); with ``choices`` the
   option text matches its letter;
5. lists — inequality unions are interval unions (``x<1 \\text{ or } x>2`` = ``(-\\infty,1)\\cup(2,\\infty)``,
   ``x \\ge 3`` = ``[3,\\infty)``); solution lists match in any order (``x=3 \\text{ or } x=-2`` =
   ``x=-2, x=3``, ``\\pm 2`` = ``2, -2``); matrices entry by entry (``\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}`` =
   ``\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}`` = ``[[1,2],[3,4]]``), never across shapes
   (``\\begin{pmatrix}1&2\\end{pmatrix}`` ≠ ``\\begin{pmatrix}1\\\\2\\end{pmatrix}``); a labelled point
   is its coordinates (``A(3,-2)`` = ``(3,-2)``); tuples are ordered (``(1,2)`` ≠ ``(2,1)``) and
   brackets count (``(1,3)`` ≠ ``[1,3]``);
6. yes/no and short text — case and punctuation insensitive (``Yes.`` = ``yes``);
7. equations and labelled values — ``x = 3`` = ``3``, ``3=x`` = ``x=3``, ``|AB| = 1`` = ``1``,
   ``m\\angle ABC = 40`` = ``40``; a rearranged equation is the same (``y-2x-1=0`` = ``y=2x+1``);
   two different left-hand sides never match (``x=3`` ≠ ``y=3``);
8. numbers in every dress, exactly: mixed numbers (``1\\frac{1}{2}`` = ``\\frac{3}{2}``, ``1 1/2`` =
   ``3/2``), scientific notation (``1.2e3`` = ``1200``, ``3\\times10^{-4}`` = ``0.0003``, ``10^{-3}`` =
   ``0.001``, ``6.02e23`` = ``602000000000000000000000``), scale words (``2.5 million`` = ``2500000``),
   repeating decimals (``0.\\overline{3}`` = ``\\frac{1}{3}``), digit groups (``10,455`` = ``10455``),
   a Unicode minus (``−5`` = ``-5``); value over form (``2/4`` = ``1/2``);
9. ratios and times — ``14:64`` = ``7:32`` = ``\\frac{7}{32}``, ``8:34 PM`` = ``20:34``;
10. units — degrees (``30^\\circ`` = ``30``), lengths, counted nouns; one side without a unit matches
    on the value (``5 \\text{ cm}`` = ``5``); two different explicit units never match and are not
    converted (``5 cm`` ≠ ``5 m``, ``5 cm`` ≠ ``50 mm``);
11. tolerance — a decimal matches an exact value only when it is that value correctly rounded at the
    precision shown, with at least three significant digits (``0.333`` = ``1/3``, ``0.33`` ≠ ``1/3``,
    ``3.46`` = ``2\\sqrt{3}``, ``3.5`` ≠ ``2\\sqrt{3}``); an integer is never a rounding
    (``17`` ≠ ``12\\sqrt{2}``); tuples follow the rule entry by entry
    (``(0.333, 0.667)`` = ``(\\frac{1}{3}, \\frac{2}{3})``);
12. everything else — math-verify (sympy) in a worker process with a hard time limit
    (``\\sqrt{12}`` = ``2\\sqrt{3}``, ``(x+1)^2`` = ``x^2+2x+1``, ``3!`` = ``6``).

Percent policy (as math-verify): the sign means hundredths and may be dropped. ``25\\%`` = ``0.25``,
``25\\%`` = ``25``, ``25\\%`` = ``25 percent``; without the sign the numbers differ (``25`` ≠ ``0.25``).

Time limit: sympy runs in a persistent child process (``sympy_worker``); a call that takes longer than
``timeout_s`` kills it, returns False and is counted in ``answer_stats()["timeouts"]``; a spare child
takes over at once. This holds in any thread and in worker processes, unlike math-verify's
``signal.alarm``. Pathological inputs (power towers, huge factorials, deep nesting, answers over
``MAX_ANSWER_CHARS``) are refused before sympy sees them. Results are memoised per process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from lbdata.validate import normalize as nz

logger = logging.getLogger(__name__)

KILL_MARGIN_S = 0.2
"""Part of a call's time limit kept for killing a late worker and starting its replacement."""

STARTUP_TIMEOUT_S = 120.0
"""How long a fresh sympy worker may take to import (not counted against a call's time limit)."""

_STATS: Counter[str] = Counter()
_LONE_SYMBOL_RE = re.compile(r"^[A-DF-HJ-Za-df-hj-z]$")
_SPACED_DIGITS_RE = re.compile(r"^[+-]?\d+(?: \d+)+$")
_TRIG_RE = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)\b")
_BARE_RELATION_RE = re.compile(r"^\s*(?:\\(?:geq?|leq?|neq?|gt|lt|not)\b|[<>≤≥≠])")


def answer_stats() -> dict[str, int]:
    """Counters of this process: calls, memo hits, fast-path decisions, sympy calls, timeouts, restarts."""
    info = _match_cached.cache_info()
    return {
        "calls": _STATS["calls"],
        "memo_hits": info.hits,
        "fast": _STATS["fast"],
        "sympy": _STATS["sympy"],
        "timeouts": _STATS["timeouts"],
        "worker_restarts": _STATS["restarts"],
        "refused": _STATS["refused"],
    }


def reset_answer_stats(*, clear_memo: bool = False) -> None:
    """Zero the counters (and, with ``clear_memo``, forget memoised results)."""
    _STATS.clear()
    if clear_memo:
        _match_cached.cache_clear()
        _extract_short.cache_clear()


def answers_match(
    gold: str,
    pred: str | None,
    *,
    choices: Sequence[str] | None = None,
    timeout_s: float = 2.0,
) -> bool:
    """True when ``pred`` states the same answer as ``gold`` (see the module docstring for the rules).

    ``pred`` may be a bare answer or a whole response (its final answer is found first). ``choices``
    are the option texts of a multiple-choice question, A first. Never raises on odd input and never
    runs longer than about ``timeout_s`` (a timeout is a False, counted).
    """
    if gold is None or pred is None:
        return False
    _STATS["calls"] += 1
    g, p = extract_answer(str(gold)), extract_answer(str(pred))
    if len(g) > nz.MAX_ANSWER_CHARS or len(p) > nz.MAX_ANSWER_CHARS:
        _STATS["refused"] += 1
        return False
    if not g or not p:
        return False
    try:
        return _match_cached(g, p, tuple(choices) if choices else None, float(timeout_s))
    except _NotReady:
        return False  # not memoised: the same pair gets a fair try once a worker is up


class _NotReady(Exception):
    """A restarting sympy worker was not ready within the call's limit (the result is not memoised)."""


def extract_answer(text: str) -> str:
    """The cleaned final answer of a response or answer (``normalize.final_answer`` then ``normalize.clean``).

    Over-long answers (more than ``MAX_ANSWER_CHARS`` once extracted) come back unchanged; they never match.
    """
    if len(text) <= _SHORT_TEXT:
        return _extract_short(text)
    return nz.clean(nz.final_answer(text))


_SHORT_TEXT = 256


@lru_cache(maxsize=1 << 14)
def _extract_short(text: str) -> str:
    return nz.clean(nz.final_answer(text))


def is_hedged(pred: str, gold: str | None = None) -> bool:
    """True when ``pred`` hedges between answers instead of giving one.

    Hedges: words of doubt ("maybe 5", "probably B", "5?"), several option letters (``B, C``,
    ``B and C``, ``(B) or (C)``), and alternatives joined by "or" (``5 or 6``, ``B: 5 or C: 7``). With
    ``gold`` given, alternatives are a hedge only when the gold names one answer: ``x = 3 or x = -2``
    for a gold of two solutions is a solution list, not a hedge; an inequality union (``x < 1 or
    x > 2``) never is. A hedged answer never matches a single gold.
    """
    p = extract_answer(pred)
    if not p or len(p) > nz.MAX_ANSWER_CHARS:
        return False
    return _hedges(extract_answer(gold) if gold is not None else None, p)


def _hedges(g: str | None, p: str) -> bool:
    """``is_hedged`` on cleaned answers."""
    if nz.hedge_words(p):
        return g is None or not nz.hedge_words(g)
    if nz.option_list(p):
        return g is None or not nz.option_list(g)
    items, by_or = nz.alternatives(p)
    if not by_or or len(set(items)) < 2 or nz.interval_union(p) is not None:
        return False  # "x=2 or x=2" repeats one answer
    return g is None or len(nz.alternatives(g)[0]) < 2


@lru_cache(maxsize=1 << 16)
def _match_cached(g: str, p: str, choices: tuple[str, ...] | None, timeout_s: float) -> bool:
    """The decision on two extracted, cleaned answers (memoised on them, so keys stay short)."""
    deadline = _now() + timeout_s
    if _hedges(g, p) and not _one_answer_said_twice(p, deadline):
        return False
    g_letter = nz.gold_letter(g, has_choices=bool(choices))
    g_text = None
    if g_letter is None and g[:2].lstrip("([")[:1].isupper() and not _hedges(None, g):
        lettered = nz.gold_letter_text(g) or nz.pred_letter(g)
        if lettered is not None and lettered[1]:
            g_letter, g_text = lettered
    p_pick = nz.pred_letter(p)
    if g_letter is not None:
        if p_pick is None:
            lettered = nz.gold_letter_text(p)
            p_pick = (lettered[0], lettered[1]) if lettered else None
        if p_pick is not None and not (g_text and len(p) > 1 and p == g_text):
            return p_pick[0] == g_letter
        if g_text is not None and _match_value(nz.clean(g_text), p, deadline):
            return True
        if choices:
            hits = [
                chr(65 + i)
                for i, c in enumerate(choices)
                if _match_value(nz.clean(nz.option_text(c)), p, deadline)
            ]
            return hits == [g_letter]
        return False
    if p_pick is None and not choices:
        lettered = nz.gold_letter_text(p)  # "C Cecile" against a gold "Cecile"
        if lettered is not None and _match_value(g, nz.clean(lettered[1]), deadline):
            return True
    if p_pick is not None and choices:
        idx = ord(p_pick[0]) - 65
        if 0 <= idx < len(choices) and len(p) <= 40:
            return _match_value(g, nz.clean(nz.option_text(choices[idx])), deadline)
    return _match_value(g, p, deadline)


def _one_answer_said_twice(p: str, deadline: float) -> bool:
    """Alternatives joined by "or" that are all the same value (``1/2 or 0.5``) are no hedge."""
    if nz.hedge_words(p) or nz.option_list(p):
        return False
    items, by_or = nz.alternatives(p)
    return by_or and all(_match_value(items[0], x, deadline) for x in items[1:])


def _percent_scaled(num: nz.Num) -> nz.Num:
    """``25`` read as ``25%``: the number divided by 100 (a decimal keeps its shown precision)."""
    decimals = None if num.decimals is None else num.decimals + 2
    return nz.Num(num.value / 100, decimals=decimals, sig=num.sig)


def _all_pair(golds: list[str], preds: list[str], deadline: float, *, ordered: bool) -> bool:
    """Every gold item matched by its own pred item (in order, or any order)."""
    if len(golds) != len(preds):
        return False
    if ordered:
        return all(_match_value(a, b, deadline) for a, b in zip(golds, preds, strict=True))
    left = list(preds)
    for a in golds:
        hit = next((i for i, b in enumerate(left) if _match_value(a, b, deadline)), None)
        if hit is None:
            return False
        left.pop(hit)
    return True


def _intervals_match(
    g: list[tuple[str, str, str, str]], p: list[tuple[str, str, str, str]], deadline: float
) -> bool:
    if len(g) != len(p):
        return False
    left = list(p)
    for a in g:
        hit = next(
            (
                i
                for i, b in enumerate(left)
                if a[0] == b[0]
                and a[3] == b[3]
                and _match_value(a[1], b[1], deadline)
                and _match_value(a[2], b[2], deadline)
            ),
            None,
        )
        if hit is None:
            return False
        left.pop(hit)
    return True


def _strip_common_lhs(items: list[str]) -> list[str]:
    """``["x=3", "x=-2"]`` → ``["3", "-2"]`` when every item assigns the same unknown."""
    split = [nz.split_assignment(it) for it in items]
    lhs = {s[0].lower() if s[0] else None for s in split}
    if len(lhs) == 1 and None not in lhs:
        return [s[1] for s in split]
    return items


def _match_value(g: str, p: str, deadline: float) -> bool:
    """Compare two cleaned non-letter answers, within ``deadline`` (``_now()``).

    Collections are decided here (interval unions, hedged and plain lists, matrices, sets, tuples);
    single values go on to ``_match_single`` and then ``_match_plain``.
    """
    if not g or not p:
        return False
    if _now() > deadline:
        _STATS["timeouts"] += 1
        return False
    if g == p:
        _STATS["fast"] += 1
        return True
    g_iv, p_iv = nz.interval_union(g), nz.interval_union(p)
    if g_iv is not None and p_iv is not None:
        _STATS["fast"] += 1
        return _intervals_match(g_iv, p_iv, deadline)
    g_items, g_or = nz.alternatives(g)
    p_items, p_or = nz.alternatives(p)
    if len(p_items) > 1 and p_or and len(g_items) == 1:
        if all(x == p_items[0] or _match_value(p_items[0], x, deadline) for x in p_items[1:]):
            return _match_value(g, p_items[0], deadline)  # "x=2 or x=2", "1/2 or 0.5": one answer
        return False  # "5 or 6" hedges
    if len(g_items) > 1 and len(p_items) > 1:
        _STATS["fast"] += 1
        return _all_pair(_strip_common_lhs(g_items), _strip_common_lhs(p_items), deadline, ordered=False)
    g_mat, p_mat = nz.matrix_rows(g), nz.matrix_rows(p)
    if g_mat is not None or p_mat is not None:
        return _matrices_match(g, p, g_mat, p_mat, deadline)
    g, p = nz.strip_point_label(g), nz.strip_point_label(p)
    g_shape, p_shape = nz.outer_shape(g), nz.outer_shape(p)
    if g_shape and p_shape and g_shape != p_shape:
        return False  # a set is no tuple, (1,3) is no [1,3]
    if g_shape == p_shape == "{}":
        _STATS["fast"] += 1
        return _all_pair(nz.alternatives(g[2:-2])[0], nz.alternatives(p[2:-2])[0], deadline, ordered=False)
    g_vec, p_vec = nz.vector_entries(g), nz.vector_entries(p)
    if g_vec is not None and (p_vec is not None or (len(p_items) > 1 and not p_shape)):
        _STATS["fast"] += 1  # a tuple against a tuple, or against its bare entries "1, 2"
        return _all_pair(g_vec, p_vec or p_items, deadline, ordered=True)
    return _match_single(g, p, deadline)


def _match_single(g: str, p: str, deadline: float) -> bool:
    """``_match_value`` once neither side is a collection: yes/no, equations and assignments."""
    g_yn = nz.yes_no(g)
    if g_yn is not None:
        return nz.yes_no(p) == g_yn
    if nz.is_equation(g) and nz.is_equation(p):
        g_lhs, g_rhs = nz.split_assignment(g)
        p_lhs, p_rhs = nz.split_assignment(p)
        if g_lhs and p_lhs and g_lhs.lower() == p_lhs.lower():
            return _match_value(g_rhs, p_rhs, deadline)
        if nz.simple_number(g_rhs) is not None and nz.simple_number(p_rhs) is not None:
            return False  # x = 3 against y = 3
        return _ask_sympy(g, p, deadline, mode="equation")
    g_lhs, g = nz.split_assignment(g)
    p_lhs, p = nz.split_assignment(p)
    if g_lhs and p_lhs and g_lhs.lower() != p_lhs.lower():
        return False
    if g_lhs or p_lhs:
        return _match_value(g, p, deadline)
    return _match_plain(g, p, deadline)


def _match_plain(g: str, p: str, deadline: float) -> bool:
    """``_match_value`` on two plain values: numbers, ratios and times, units, surds, text, then sympy."""
    if "=" in p and "=" not in g and not nz.is_hedged(p) and _number(g) is not None:
        value = _number(p.rsplit("=", 1)[-1].strip())  # "a+b = 3+4 = 7": the value it arrives at
        return value is not None and nz.numbers_match(_number(g), value)
    g_num, p_num = _number(g), _number(p)
    if g_num is not None and p_num is None and g_num.decimals is not None:
        p_num = nz.decimal_comma(p)  # "1000,99" against a gold written 1000.99
    if g_num is not None and p_num is not None:
        _STATS["fast"] += 1
        return nz.numbers_match(g_num, p_num)
    ratio = nz.ratios_match(g, p)
    if ratio is not None:
        _STATS["fast"] += 1
        return ratio
    g, p = nz.leading_number_word(g), nz.leading_number_word(p)
    # "\\sin 30^\\circ" keeps its degrees: they belong to the angle, not to the answer
    g, g_unit = nz.split_unit(g) if not _TRIG_RE.search(g) else (g, None)
    p, p_unit = nz.split_unit(p) if not _TRIG_RE.search(p) else (p, None)
    if g_unit and p_unit and g_unit != p_unit:
        return False
    if g == p:
        _STATS["fast"] += 1
        return True
    if _SPACED_DIGITS_RE.match(p) and nz.simple_number(p) is None:
        return False  # "1 0": digits split by spaces are no number
    g_num, p_num = nz.simple_number(g), nz.simple_number(p)
    if g_num is not None and p_num is not None:
        _STATS["fast"] += 1
        if nz.numbers_match(g_num, p_num):
            return True
        if g_unit == "%" and not p_unit:
            return nz.numbers_match(_percent_scaled(g_num), p_num)
        if p_unit == "%" and not g_unit:
            return nz.numbers_match(g_num, _percent_scaled(p_num))
        return False
    if (g_num is not None and (_LONE_SYMBOL_RE.match(p) or nz.is_label(p))) or (
        p_num is not None and (_LONE_SYMBOL_RE.match(g) or nz.is_label(g))
    ):
        _STATS["fast"] += 1
        return False  # a number against a lone letter ("85" against "C") or a label ("99999" against "D1")
    surds = nz.surd_matches(g, p)
    if surds is not None:
        _STATS["fast"] += 1
        return surds
    if nz.is_text(g) or nz.is_text(p) or (nz.is_label(g) and nz.is_label(p)):
        _STATS["fast"] += 1
        return nz.norm_text(g) == nz.norm_text(p)
    if bool(_BARE_RELATION_RE.match(g)) != bool(_BARE_RELATION_RE.match(p)):
        return False  # "\\ge 5" is a bound, not the value 5 (math-verify drops the sign)
    return _ask_sympy(g, p, deadline)


def _number(s: str) -> nz.Num | None:
    """A simple number (``normalize.simple_number``) or the exact value of plain arithmetic (``2^3+2``)."""
    num = nz.simple_number(s)
    if num is None:
        value = nz.arithmetic_value(s)
        return nz.Num(value) if value is not None else None
    return num


def _matrices_match(
    g: str, p: str, g_mat: list[list[str]] | None, p_mat: list[list[str]] | None, deadline: float
) -> bool:
    """Matrices match entry by entry and never across shapes; a flat tuple matches a row or column vector."""
    _STATS["fast"] += 1
    if g_mat is not None and p_mat is not None:
        if [len(r) for r in g_mat] != [len(r) for r in p_mat]:
            return False
        return _all_pair([x for r in g_mat for x in r], [x for r in p_mat for x in r], deadline, ordered=True)
    mat, other = (g_mat, p) if g_mat is not None else (p_mat, g)
    assert mat is not None
    vec = nz.vector_entries(other)
    if vec is None and ("matrix}" in other or "{array}" in other):
        return _ask_sympy(g, p, deadline)  # a matrix expression such as a transpose: sympy evaluates it
    if vec is None or not (len(mat) == 1 or all(len(r) == 1 for r in mat)):
        return False
    flat = [x for r in mat for x in r]
    return (
        _all_pair(flat, vec, deadline, ordered=True)
        if g_mat is not None
        else _all_pair(vec, flat, deadline, ordered=True)
    )


def _ask_sympy(g: str, p: str, deadline: float, *, mode: str = "value") -> bool:
    if nz.too_hard(g) or nz.too_hard(p):
        _STATS["refused"] += 1
        return False
    worker = _worker()
    if not worker.ever_ready:  # the thread's first worker: its start is not counted against the call
        started = time.monotonic()
        if not worker.start_first():
            return False
        _local.startup_s = getattr(_local, "startup_s", 0.0) + time.monotonic() - started
    left = deadline - _now()
    if left <= 0:
        _STATS["timeouts"] += 1
        return False
    _STATS["sympy"] += 1
    return worker.ask(g, p, left, mode=mode)


def _now() -> float:
    """The clock of call deadlines: ``time.monotonic()`` less the time this thread waited for its first worker."""
    return time.monotonic() - getattr(_local, "startup_s", 0.0)


# ----------------------------------------------------------------------------- the sympy worker process


class _SympyWorker:
    """A persistent ``python -m lbdata.validate.sympy_worker`` child, killed on timeout.

    The first start of a thread's worker is not counted against a call's time limit (``warm_up``
    starts it early). After the first kill a spare child is kept importing in the background, so
    the next call finds a ready worker at once; waiting for a restarting worker counts against
    the call's own limit, so no call ever waits longer than its ``timeout_s``.
    """

    def __init__(self) -> None:
        self.owner_pid = os.getpid()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.spare: subprocess.Popen[bytes] | None = None
        self.ever_ready = False

    @staticmethod
    def _start() -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("OMP_NUM_THREADS", "1")
        env["LBDATA_SYMPY_PARENT"] = str(os.getpid())  # the worker ends when this process is gone
        _STATS["restarts"] += 1
        return subprocess.Popen(
            [sys.executable, "-m", "lbdata.validate.sympy_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def spawn(self) -> None:
        """Make a child the worker: the spare when there is one (and start a new spare), else a new one."""
        if self.spare is not None and self.spare.poll() is None:
            self.proc, self.spare = self.spare, self._start()
        else:
            self.proc = self._start()
            if self.ever_ready:
                self.spare = self._start()
        self.ready = False

    def _ensure_ready(self, deadline: float) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            self.spawn()
        if self.ready:
            return True
        assert self.proc is not None and self.proc.stdout is not None
        wait = deadline - time.monotonic() if self.ever_ready else STARTUP_TIMEOUT_S
        ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, wait))
        if not ready:
            if self.ever_ready:
                _STATS["timeouts"] += 1
                raise _NotReady  # still starting after a kill: this call's time is up, the child keeps going
            logger.warning("the sympy answer worker did not start; answers needing sympy count as no match")
            self.kill()
            return False
        if self.proc.stdout.readline().strip() != b"ready":
            self.kill()
            return False
        self.ready = self.ever_ready = True
        return True

    def start_first(self) -> bool:
        """Start the first worker and wait for it (up to ``STARTUP_TIMEOUT_S``); False when it never starts."""
        return self._ensure_ready(time.monotonic() + STARTUP_TIMEOUT_S)

    def kill(self, *, wait: bool = True) -> None:
        """Kill the child; without ``wait`` it is reaped later (a late call returns at once)."""
        if self.proc is not None and self.owner_pid == os.getpid():
            try:
                self.proc.kill()
                if wait:
                    self.proc.wait(timeout=5)
                else:
                    _dying.append((self.owner_pid, self.proc))
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.proc = None
        self.ready = False

    def close(self) -> None:
        self.kill()
        if self.spare is not None and self.owner_pid == os.getpid():
            try:
                self.spare.kill()
                self.spare.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.spare = None

    def ask(self, gold: str, pred: str, timeout_s: float, *, mode: str = "value") -> bool:
        deadline = time.monotonic() + timeout_s
        if not self._ensure_ready(deadline):
            return False
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps({"gold": gold, "pred": pred, "mode": mode}).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            self.kill()
            return False
        left = deadline - time.monotonic() - KILL_MARGIN_S
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, left))
        if not ready:
            _STATS["timeouts"] += 1
            logger.info("answer check timed out after %.1fs; counted as no match", timeout_s)
            self.kill(wait=False)
            _reap()
            self.spawn()
            return False
        line = proc.stdout.readline()
        if not line:  # the worker died (memory cap, crash)
            self.kill()
            return False
        try:
            return bool(json.loads(line)["ok"])
        except (ValueError, KeyError):
            self.kill()
            return False


_dying: list[tuple[int, subprocess.Popen[bytes]]] = []
"""Killed workers not yet reaped (reaped on the next timeout or at exit, never waited for in a call)."""


def _reap() -> None:
    _dying[:] = [(pid, p) for pid, p in _dying if pid == os.getpid() and p.poll() is None]


_local = threading.local()
_workers: list[_SympyWorker] = []
_workers_lock = threading.Lock()


def _worker() -> _SympyWorker:
    """This thread's worker (a forked child never reuses its parent's pipes)."""
    w = getattr(_local, "worker", None)
    if w is None or w.owner_pid != os.getpid():
        w = _SympyWorker()
        _local.worker = w
        with _workers_lock:
            _workers.append(w)
    return w


def warm_up() -> None:
    """Start this thread's sympy worker now (non-blocking), so the first hard answer does not wait for it."""
    w = _worker()
    if w.proc is None:
        w.spawn()


@atexit.register
def shutdown_workers() -> None:
    """Kill the sympy workers this process started."""
    with _workers_lock:
        for w in _workers:
            w.close()
        _workers.clear()
    for pid, proc in _dying:
        if pid == os.getpid():  # a forked child never waits for its parent's children
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
    _dying.clear()
