"""Answer normal forms: the cheap, exact layers of answer checking that run before sympy.

Everything here is pure string and ``fractions.Fraction`` work: finding the final answer in a response
(``final_answer``), unwrapping LaTeX (``clean``), hedges and lists (``alternatives``), assignments and
equations, units, multiple-choice letters, yes/no, short text, numbers in every dress
(``simple_number``, ``arithmetic_value``), matrices, ratios, clock times and interval unions.
``lbdata.validate.answers`` decides with these when it can and falls back to math-verify (in a
killable worker process) only for real expressions. Every function is linear, or close to it, in
the length of its input.

Modules: ``latex`` (brackets, ``\\boxed``, ``clean``), ``extract`` (``final_answer``), ``hedges``
(hedges and ``alternatives``), ``equations`` (assignments, equations, point labels), ``units``
(``split_unit``), ``text`` (option letters, yes/no, text, labels, number words), ``numbers`` (``Num``,
``simple_number``, rounding, surds), ``arithmetic`` (``arithmetic_value``), ``structures`` (matrices,
vectors, ratios, clock times, interval unions) and ``guards`` (``too_hard``). Every public name is
re-exported here, so ``from lbdata.validate import normalize as nz`` reaches them all.
"""

from __future__ import annotations

from lbdata.validate.normalize.arithmetic import (
    MAX_ARITH_EXPONENT,
    arithmetic_value,
)
from lbdata.validate.normalize.equations import (
    is_equation,
    split_assignment,
    strip_point_label,
)
from lbdata.validate.normalize.extract import (
    SHORT_ANSWER_CHARS,
    final_answer,
)
from lbdata.validate.normalize.guards import (
    too_hard,
)
from lbdata.validate.normalize.hedges import (
    alternatives,
    hedge_words,
    is_hedged,
    option_list,
)
from lbdata.validate.normalize.latex import (
    MAX_ANSWER_CHARS,
    clean,
    last_boxed,
    matching_brace,
    matching_paren,
)
from lbdata.validate.normalize.numbers import (
    MIN_SIG_DIGITS,
    Num,
    Surd,
    decimal_comma,
    numbers_match,
    rounds_to,
    simple_number,
    simple_surd,
    surd_matches,
)
from lbdata.validate.normalize.structures import (
    clock_minutes,
    interval_union,
    matrix_rows,
    outer_shape,
    ratio_parts,
    ratios_match,
    vector_entries,
)
from lbdata.validate.normalize.text import (
    gold_letter,
    gold_letter_text,
    is_label,
    is_text,
    leading_number_word,
    norm_text,
    number_word,
    option_text,
    pred_letter,
    yes_no,
)
from lbdata.validate.normalize.units import (
    split_unit,
)

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_ARITH_EXPONENT",
    "MIN_SIG_DIGITS",
    "Num",
    "SHORT_ANSWER_CHARS",
    "Surd",
    "alternatives",
    "arithmetic_value",
    "clean",
    "clock_minutes",
    "decimal_comma",
    "final_answer",
    "gold_letter",
    "gold_letter_text",
    "hedge_words",
    "interval_union",
    "is_equation",
    "is_hedged",
    "is_label",
    "is_text",
    "last_boxed",
    "leading_number_word",
    "matching_brace",
    "matching_paren",
    "matrix_rows",
    "norm_text",
    "number_word",
    "numbers_match",
    "option_list",
    "option_text",
    "outer_shape",
    "pred_letter",
    "ratio_parts",
    "ratios_match",
    "rounds_to",
    "simple_number",
    "simple_surd",
    "split_assignment",
    "split_unit",
    "strip_point_label",
    "surd_matches",
    "too_hard",
    "vector_entries",
    "yes_no",
]
