"""The sympy side of answer checking, run in a child process the parent can kill.

math-verify's own time limit uses ``signal.alarm``, which works only in the main thread of the main
interpreter. lbdata calls it with its time limits off, here, in a separate process: the parent
(``lbdata.validate.answers``) sends one ``{"gold", "pred"}`` JSON line at a time, waits at most the
time limit for the one-line answer, and kills and restarts this process when it is late. A runaway
expression therefore costs one time limit and a restart, never a hung validator.

Run as ``python -m lbdata.validate.sympy_worker``; it prints ``ready`` once imports are done.
"""

from __future__ import annotations

import json
import logging
import sys
from decimal import Decimal

from lbdata.validate.normalize import rounds_to, simple_number

MEMORY_LIMIT_BYTES = 4 << 30
"""Address-space cap of the worker: an expression that needs more fails with MemoryError (no match)."""


WARM_UP = [
    ("30", "\\frac{\\pi}{6}"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("(x+1)^2", "x^2+2x+1"),
    ("\\sqrt{3}/2", "0.866"),
]
"""Comparisons run once before ``ready`` so their one-off costs are not part of a call's time limit."""


def _parse(text: str) -> list:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    return parse(
        f"${text}$",
        extraction_config=[LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()],
        parsing_timeout=None,
    )


def _numeric_value(expr: object) -> Decimal | None:
    """The value of a closed-form real number (``2\\sqrt{3}``, ``\\pi/4``) to 50 digits, else None."""
    import sympy

    if not isinstance(expr, sympy.Basic) or isinstance(expr, sympy.Float) or not expr.is_number:
        return None
    try:
        value = sympy.N(expr, 50)
    except Exception:  # noqa: BLE001 - sympy raises many kinds; no value means "not a number"
        return None
    if not value.is_real or not value.is_finite:
        return None
    return Decimal(str(value))


def sympy_match(gold: str, pred: str) -> bool:
    """math-verify comparison of two cleaned answers, plus the rounding rule for decimals.

    A plain decimal against a closed form (or the reverse) matches only when it is that value correctly
    rounded at the precision it shows (``normalize.rounds_to``); everything else is math-verify's
    ``verify`` with set/relation comparison allowed (an inequality matches its interval).
    """
    from math_verify import verify

    gold_parsed = _parse(gold)
    pred_parsed = _parse(pred)
    if not gold_parsed or not pred_parsed:
        return False
    g_num, p_num = simple_number(gold), simple_number(pred)
    if p_num is not None and p_num.decimals is not None and g_num is None:
        value = _numeric_value(gold_parsed[0])
        if value is not None:
            return rounds_to(value, p_num)
    if g_num is not None and g_num.decimals is not None and p_num is None:
        value = _numeric_value(pred_parsed[0])
        if value is not None:
            return rounds_to(value, g_num)
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None, allow_set_relation_comp=True))


def equations_match(gold: str, pred: str) -> bool:
    """Two equations match when they describe the same relation: ``y = 2x + 1`` = ``y - 2x - 1 = 0``.

    math-verify's comparison first; then the differences of the two sides must be proportional by a
    nonzero constant (``3 = x`` = ``x = 3``, ``2y = 4x + 2`` = ``y = 2x + 1``).
    """
    import sympy
    from math_verify import verify

    gold_parsed, pred_parsed = _parse(gold), _parse(pred)
    if not gold_parsed or not pred_parsed:
        return False
    if verify(gold_parsed, pred_parsed, timeout_seconds=None):
        return True
    ge, pe = gold_parsed[0], pred_parsed[0]
    if not isinstance(ge, sympy.Equality) or not isinstance(pe, sympy.Equality):
        return False
    d1, d2 = ge.lhs - ge.rhs, pe.lhs - pe.rhs
    if d1 == 0 or d2 == 0:
        return False
    ratio = sympy.simplify(d1 / d2)
    return bool(ratio.is_number and ratio != 0 and ratio.is_finite)


PARENT_ENV = "LBDATA_SYMPY_PARENT"
"""Environment variable with the pid of the process that started the worker (it may die before we look)."""


def _exit_with_parent() -> None:
    """End this worker within a second of its parent's death, even when a forked sibling keeps its stdin open."""
    import os
    import threading
    import time

    parent = int(os.environ.get(PARENT_ENV, "0")) or os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    _exit_with_parent()
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    logging.disable(logging.CRITICAL)  # math-verify warns that its own timeout is off: that is the point
    import math_verify  # noqa: F401 - import once, before saying ready

    for gold, pred in WARM_UP:  # sympy builds caches lazily: pay for them before the first timed call
        sympy_match(gold, pred)
    equations_match("y = 2x + 1", "y - 2x - 1 = 0")

    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            check = equations_match if req.get("mode") == "equation" else sympy_match
            ok = check(req["gold"], req["pred"])
        except (MemoryError, RecursionError):
            ok = False
        except Exception:  # noqa: BLE001 - any failure inside sympy is "no match"
            ok = False
        out.write('{"ok": %s}\n' % ("true" if ok else "false"))
        out.flush()


if __name__ == "__main__":
    main()
