"""Simple numbers: ``Num``, every dress of a number (``simple_number``), rounding (``rounds_to``) and exact surds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction


@dataclass(frozen=True)
class Num:
    """A simple number: its exact value, and for a decimal literal the digits it shows."""

    value: Fraction
    decimals: int | None = None  # digits after the point for a decimal literal, None for exact forms
    sig: int = 0  # significant digits shown by a decimal literal


_NUM_SPACE_RE = re.compile(r"(?<=[+\-/{}])\s+|\s+(?=[/{}])|(?<=\\frac)\s+")
_SPACED_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_THOUSANDS_RE = re.compile(r"^[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")
_DEC_RE = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+)$")
_FRAC_RE = re.compile(r"^([+-]?)\\frac\s*\{\s*([+-]?\d+)\s*\}\s*\{\s*([+-]?\d+)\s*\}$")
_FRAC_SHORT_RE = re.compile(r"^([+-]?)\\frac\s*(\d)\s*(\d)$")
_SLASH_RE = re.compile(r"^([+-]?\d+)\s*/\s*([+-]?\d+)$")


_MANTISSA = r"([+-]?(?:\d+\.?\d*|\.\d+))"
_SCI_E_RE = re.compile(r"^" + _MANTISSA + r"\s*[eE]\s*([+-]?\d{1,3})$")
_SCI_TIMES_RE = re.compile(
    r"^" + _MANTISSA + r"\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{?\s*([+-]?\d{1,3})\s*\}?$"
)
_POW10_RE = re.compile(r"^([+-]?)10\s*\^\s*\{?\s*([+-]?\d{1,3})\s*\}?$")
_SCALE = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_SCALED_RE = re.compile(
    r"^([+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*(thousand|million|billion|trillion)s?$", re.I
)
_MIXED_RE = re.compile(r"^([+-]?)(\d+)\s*\\frac\s*(?:\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}|(\d)(\d))$")
_MIXED_SLASH_RE = re.compile(r"^([+-]?)(\d+)\s+(\d+)\s*/\s*(\d+)$")
_REPEAT_RE = re.compile(r"^([+-]?)(\d*)\.(\d*)\s*\\(?:overline|bar|dot)\s*\{?\s*(\d+)\s*\}?$")
_REPEAT_PAREN_RE = re.compile(r"^([+-]?)(\d*)\.(\d*)\((\d+)\)$")
_ELLIPSIS_RE = re.compile(r"(?<=\d)\s*(?:\.\.\.|\\ldots|\\dots|\\cdots|…)$")


def _decimal_literal(text: str, shift: int = 0) -> Num:
    """A decimal literal times ``10**shift``: exact value, the decimals it shows, its significant digits."""
    digits = text.lstrip("+-")
    decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
    sig = len(digits.replace(".", "").lstrip("0"))
    value = Fraction(Decimal(text)) * Fraction(10) ** shift
    return Num(value, decimals=decimals - shift, sig=sig)


def _dressed_number(s: str) -> Num | None:
    """Scientific notation, ``10^{-3}``, ``2.5 million``, mixed numbers, repeating decimals, ``0.333...``."""
    m = _SCI_E_RE.match(s) or _SCI_TIMES_RE.match(s)
    if m:
        mantissa, exp = m.group(1), int(m.group(2))
        if "." not in mantissa:
            return Num(Fraction(int(mantissa)) * Fraction(10) ** exp)
        return _decimal_literal(mantissa, exp)
    m = _POW10_RE.match(s)
    if m:
        v = Fraction(10) ** int(m.group(2))
        return Num(-v if m.group(1) == "-" else v)
    m = _SCALED_RE.match(s)
    if m:
        mantissa, shift = m.group(1).replace(",", ""), _SCALE[m.group(2).lower()]
        if "." not in mantissa:
            return Num(Fraction(int(mantissa)) * 10**shift)
        return _decimal_literal(mantissa, shift)
    m = _MIXED_RE.match(s) or _MIXED_SLASH_RE.match(s)
    if m:
        groups = [g for g in m.groups()[1:] if g is not None]
        whole, num, den = (int(g) for g in groups)
        if den == 0 or num >= den:
            return None
        v = whole + Fraction(num, den)
        return Num(-v if m.group(1) == "-" else v)
    m = _REPEAT_RE.match(s) or _REPEAT_PAREN_RE.match(s)
    if m:
        sign, whole, fixed, rep = m.groups()
        base = Fraction(int(whole or "0")) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
        v = base + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
        return Num(-v if sign == "-" else v)
    m = _ELLIPSIS_RE.search(s)
    if m and _DEC_RE.match(s[: m.start()]):
        return _decimal_literal(s[: m.start()])
    return None


def simple_number(s: str) -> Num | None:
    """Parse a number exactly: an integer, a decimal, ``1,234.5``, ``a/b``, ``\\frac{a}{b}``, a mixed number
    (``1\\frac{1}{2}``, ``1 1/2``), scientific notation (``1.2e3``, ``3\\times10^{-4}``, ``10^{-3}``), a
    scale word (``2.5 million``) or a repeating decimal (``0.\\overline{3}``); anything else → None.
    """
    s = s.strip()
    if len(s) > 60:
        return None
    dressed = _dressed_number(s)
    if dressed is not None:
        return dressed
    s = _NUM_SPACE_RE.sub("", s)
    if " " in s:
        if not _SPACED_THOUSANDS_RE.match(s):
            return None  # "1 0" is not 10
        s = s.replace(" ", "")
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    if _INT_RE.match(s):
        return Num(Fraction(int(s)))
    if _DEC_RE.match(s):
        return _decimal_literal(s)
    for rx in (_FRAC_RE, _FRAC_SHORT_RE):
        m = rx.match(s)
        if m:
            num, den = int(m.group(2)), int(m.group(3))
            if den == 0:
                return None
            v = Fraction(num, den)
            return Num(-v if m.group(1) == "-" else v)
    m = _SLASH_RE.match(s)
    if m:
        num, den = int(m.group(1)), int(m.group(2))
        return Num(Fraction(num, den)) if den else None
    return None


_DECIMAL_COMMA_RE = re.compile(r"^[+-]?\d+,\d+$")


def decimal_comma(s: str) -> Num | None:
    """``1000,99`` / ``1,22`` / ``0,111`` read with a decimal comma (not a digit group); else None."""
    t = s.strip()
    if not _DECIMAL_COMMA_RE.match(t) or (_THOUSANDS_RE.match(t) and not t.lstrip("+-").startswith("0")):
        return None
    return simple_number(t.replace(",", "."))


MIN_SIG_DIGITS = 3
"""A decimal that is a rounding (not the exact value) must show at least this many significant digits."""


def rounds_to(exact: Fraction | Decimal, approx: Num) -> bool:
    """True when ``approx`` is ``exact`` correctly rounded at the precision ``approx`` shows.

    Exact equality always counts. Otherwise the decimal must show at least ``MIN_SIG_DIGITS``
    significant digits (``3.46`` for ``2\\sqrt{3}``, not ``3.5``) and equal ``exact`` rounded half-up
    or half-even at its number of decimals.
    """
    if approx.decimals is None:
        return False
    if exact == approx.value or (isinstance(exact, Decimal) and Fraction(exact) == approx.value):
        return True
    if approx.sig < MIN_SIG_DIGITS:
        return False
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal(exact.numerator) / Decimal(exact.denominator) if isinstance(exact, Fraction) else exact
        q = Decimal(1).scaleb(-approx.decimals)
        target = Decimal(approx.value.numerator) / Decimal(approx.value.denominator)
        try:
            return any(d.quantize(q, rounding=r) == target for r in (ROUND_HALF_UP, ROUND_HALF_EVEN))
        except InvalidOperation:  # more digits than the context holds: no rounding of this value
            return False


def numbers_match(gold: Num, pred: Num) -> bool:
    """Value over form: equal values match; a decimal matches an exact value it correctly rounds."""
    if gold.value == pred.value:
        return True
    if pred.decimals is not None and gold.decimals is None:
        return rounds_to(gold.value, pred)
    if gold.decimals is not None and pred.decimals is None:
        return rounds_to(pred.value, gold)
    return False


@dataclass(frozen=True)
class Surd:
    """An exact ``coef * sqrt(rad)`` with ``rad`` square-free (``rad == 1``: a rational number)."""

    coef: Fraction
    rad: int

    def decimal(self) -> Decimal:
        with localcontext() as ctx:
            ctx.prec = 60
            return Decimal(self.coef.numerator) / Decimal(self.coef.denominator) * Decimal(self.rad).sqrt()


_SURD_RE = re.compile(r"^([+-])?(\d+)?\\sqrt\{?(\d+)\}?$")
_SURD_FRAC_RE = re.compile(r"^([+-])?\\frac\{(\d+)?\\sqrt\{?(\d+)\}?\}\{(\d+)\}$")


def _surd(coef: Fraction, n: int) -> Surd:
    out, k = 1, 2
    while k * k <= n:
        while n % (k * k) == 0:
            out *= k
            n //= k * k
        k += 1
    return Surd(coef * out, n if coef else 1)


def simple_surd(s: str) -> Surd | None:
    """``a\\sqrt{b}``, ``\\sqrt{b}``, ``\\frac{a\\sqrt{b}}{c}`` or an exact simple number, in normal form; else None."""
    s = s.replace(" ", "")
    num = simple_number(s)
    if num is not None:
        return Surd(num.value, 1) if num.decimals is None else None
    m = _SURD_RE.match(s)
    if m:
        sign, a, b, c = m.group(1), m.group(2), m.group(3), "1"
    else:
        m = _SURD_FRAC_RE.match(s)
        if m is None:
            return None
        sign, a, b, c = m.group(1), m.group(2), m.group(3), m.group(4)
    if len(b) > 7 or int(c) == 0:
        return None
    coef = Fraction(int(a or 1), int(c))
    return _surd(-coef if sign == "-" else coef, int(b))


def surd_matches(gold: str, pred: str) -> bool | None:
    """Decide two answers that are exact surds or simple numbers without sympy; None when out of reach.

    Exact forms are equal when their normal forms are; a decimal matches a surd it correctly rounds.
    """
    g, p = simple_surd(gold), simple_surd(pred)
    if g is not None and p is not None:
        return g == p
    if g is None and p is None:
        return None
    exact, other = (g, pred) if g is not None else (p, gold)
    approx = simple_number(other)
    if approx is None or approx.decimals is None or exact is None:
        return None
    if exact.rad == 1:
        return rounds_to(exact.coef, approx)
    return rounds_to(exact.decimal(), approx)
