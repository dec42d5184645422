"""``answers_match(gold, pred)``: does a final answer match the gold answer?

Layers, cheapest first; the first layer that can decide, decides:

1. guards — empty, over-long (> ``MAX_ANSWER_CHARS``) or hedged answers ("5 or 6", "maybe 5") are wrong;
2. presentation is stripped (``normalize.clean``): ``\\boxed``, ``$``, ``\\text``/``\\mathrm``,
   ``\\left``/``\\right``, ``\\dfrac``, spacing, "the answer is", a trailing full stop;
3. multiple choice — a gold letter is matched by ``B``, ``(B)``, ``B.``, ``Option B``, ``B: 12``; any
   other letter never matches; with ``choices`` the option text matches its letter (and a letter
   matches a gold option text);
4. yes/no and short text — case and punctuation insensitive, a leading article ignored;
5. ``x = 3`` / ``AB = 5`` → the right-hand side (two different left-hand sides never match);
6. units — degrees (``30^\\circ`` = ``30`` = ``30 degrees``), percent, lengths, counted nouns; one side
   without a unit matches on the value; two different explicit units never match (``5 cm`` ≠ ``5 m``,
   and no conversion: ``5 cm`` ≠ ``50 mm``);
7. simple numbers, exactly (``fractions``): integers, decimals, ``1,000``, ``a/b``, ``\\frac{a}{b}``;
   value over form (``2/4`` = ``1/2``); a decimal matches an exact value only when it is that value
   correctly rounded at the precision shown and shows at least three significant digits;
8. everything else — math-verify (sympy) in a worker process with a hard time limit: sets unordered,
   tuples and intervals ordered (``(1,3)`` ≠ ``[1,3]``), an inequality matches its interval, ``3!`` = 6.

Percent policy: ``%`` is a unit of the number written. ``25%`` = ``25`` = ``25 percent`` = ``25\\%``,
and ``25%`` ≠ ``0.25``: the two numbers differ, and the question fixes which one it asks for.

Time limit: sympy runs in a persistent child process (``sympy_worker``); a call that takes longer than
``timeout_s`` kills it (restarted on the next call), returns False and is counted in
``answer_stats()["timeouts"]``. This holds in any thread and in worker processes, unlike math-verify's
``signal.alarm``. Pathological inputs (power towers, huge factorials, deep nesting) are refused before
sympy sees them. Results are memoised per process.
"""

from __future__ import annotations

import atexit
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

STARTUP_TIMEOUT_S = 120.0
"""How long a fresh sympy worker may take to import (not counted against a call's time limit)."""

_STATS: Counter[str] = Counter()
_SPACED_DIGITS_RE = re.compile(r"^[+-]?\d+(?: \d+)+$")


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
    return _match_cached(str(gold), str(pred), tuple(choices) if choices else None, float(timeout_s))


def extract_answer(text: str) -> str:
    """The cleaned final answer of a response or answer (``normalize.final_answer`` then ``normalize.clean``).

    Over-long answers (more than ``MAX_ANSWER_CHARS`` once extracted) come back unchanged; they never match.
    """
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
    if not by_or or len(items) < 2 or nz.interval_union(p) is not None:
        return False
    return g is None or len(nz.alternatives(g)[0]) < 2


@lru_cache(maxsize=1 << 16)
def _match_cached(gold: str, pred: str, choices: tuple[str, ...] | None, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    g, p = extract_answer(gold), extract_answer(pred)
    if len(g) > nz.MAX_ANSWER_CHARS or len(p) > nz.MAX_ANSWER_CHARS:
        _STATS["refused"] += 1
        return False
    if not g or not p:
        return False
    if _hedges(g, p):
        return False
    g_letter = nz.gold_letter(g, has_choices=bool(choices))
    g_text = None
    if g_letter is None and g[:2].lstrip("([")[:1].isupper():
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
    if p_pick is not None and choices:
        idx = ord(p_pick[0]) - 65
        if 0 <= idx < len(choices) and len(p) <= 40:
            return _match_value(g, nz.clean(nz.option_text(choices[idx])), deadline)
    return _match_value(g, p, deadline)


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


def _intervals_match(g: list[tuple[str, str, str, str]], p: list[tuple[str, str, str, str]], deadline: float) -> bool:
    if len(g) != len(p):
        return False
    left = list(p)
    for a in g:
        hit = next(
            (
                i
                for i, b in enumerate(left)
                if a[0] == b[0] and a[3] == b[3] and _match_value(a[1], b[1], deadline)
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
    """Compare two cleaned non-letter answers, within ``deadline`` (``time.monotonic()``)."""
    if not g or not p:
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
    g_vec, p_vec = nz.vector_entries(g), nz.vector_entries(p)
    if g_vec is not None and p_vec is not None:
        _STATS["fast"] += 1
        return _all_pair(g_vec, p_vec, deadline, ordered=True)
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
    g_num, p_num = nz.simple_number(g), nz.simple_number(p)
    if g_num is not None and p_num is not None:
        _STATS["fast"] += 1
        return nz.numbers_match(g_num, p_num)
    ratio = nz.ratios_match(g, p)
    if ratio is not None:
        _STATS["fast"] += 1
        return ratio
    g, p = nz.leading_number_word(g), nz.leading_number_word(p)
    g, g_unit = nz.split_unit(g)
    p, p_unit = nz.split_unit(p)
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
    surds = nz.surd_matches(g, p)
    if surds is not None:
        _STATS["fast"] += 1
        return surds
    if nz.is_text(g) or nz.is_text(p) or (nz.is_label(g) and nz.is_label(p)):
        _STATS["fast"] += 1
        return nz.norm_text(g) == nz.norm_text(p)
    return _ask_sympy(g, p, deadline)


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
    if vec is None or not (len(mat) == 1 or all(len(r) == 1 for r in mat)):
        return False
    flat = [x for r in mat for x in r]
    return _all_pair(flat, vec, deadline, ordered=True) if g_mat is not None else _all_pair(vec, flat, deadline, ordered=True)


def _ask_sympy(g: str, p: str, deadline: float, *, mode: str = "value") -> bool:
    if nz.too_hard(g) or nz.too_hard(p):
        _STATS["refused"] += 1
        return False
    left = deadline - time.monotonic()
    if left <= 0:
        _STATS["timeouts"] += 1
        return False
    _STATS["sympy"] += 1
    return _worker().ask(g, p, left, mode=mode)


# ----------------------------------------------------------------------------- the sympy worker process


class _SympyWorker:
    """A persistent ``python -m lbdata.validate.sympy_worker`` child, killed and restarted on timeout.

    After a kill the replacement is spawned at once, so its imports overlap with the caller's other
    work; waiting for it to say ``ready`` is never counted against a call's time limit.
    """

    def __init__(self) -> None:
        self.owner_pid = os.getpid()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = False

    def spawn(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("OMP_NUM_THREADS", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lbdata.validate.sympy_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.ready = False
        _STATS["restarts"] += 1

    def _ensure_ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            self.spawn()
        if self.ready:
            return True
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], STARTUP_TIMEOUT_S)
        if not ready or self.proc.stdout.readline().strip() != b"ready":
            logger.warning("the sympy answer worker did not start; answers needing sympy count as no match")
            self.kill()
            return False
        self.ready = True
        return True

    def kill(self) -> None:
        if self.proc is not None and self.owner_pid == os.getpid():
            try:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.proc = None
        self.ready = False

    def ask(self, gold: str, pred: str, timeout_s: float, *, mode: str = "value") -> bool:
        if not self._ensure_ready():
            return False
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps({"gold": gold, "pred": pred, "mode": mode}).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            self.kill()
            return False
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, timeout_s))
        if not ready:
            _STATS["timeouts"] += 1
            logger.info("answer check timed out after %.1fs; counted as no match", timeout_s)
            self.kill()
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
            w.kill()
        _workers.clear()
