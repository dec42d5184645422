"""Units: ``5 cm`` → (``5``, ``cm``), ``30^\\circ`` → (``30``, ``deg``), spellings mapped to one canonical unit."""

from __future__ import annotations

import re

from lbdata.validate.normalize.text import _MATH_WORDS

_UNIT_CANON = {
    "mm": "mm",
    "millimeter": "mm",
    "millimetre": "mm",
    "cm": "cm",
    "centimeter": "cm",
    "centimetre": "cm",
    "m": "m",
    "meter": "m",
    "metre": "m",
    "mtr": "m",
    "km": "km",
    "kilometer": "km",
    "kilometre": "km",
    "in": "in",
    "inch": "in",
    "inche": "in",
    "ft": "ft",
    "foot": "ft",
    "feet": "ft",
    "yd": "yd",
    "yard": "yd",
    "mi": "mi",
    "mile": "mi",
    "mg": "mg",
    "g": "g",
    "gram": "g",
    "gm": "g",
    "kg": "kg",
    "kilogram": "kg",
    "lb": "lb",
    "pound": "lb",
    "oz": "oz",
    "ounce": "oz",
    "ml": "ml",
    "milliliter": "ml",
    "millilitre": "ml",
    "l": "l",
    "liter": "l",
    "litre": "l",
    "s": "s",
    "sec": "s",
    "second": "s",
    "min": "min",
    "minute": "min",
    "h": "h",
    "hr": "h",
    "hour": "h",
    "day": "day",
    "week": "week",
    "month": "month",
    "year": "year",
    "yr": "year",
    "deg": "deg",
    "degree": "deg",
    "rad": "rad",
    "radian": "rad",
    "%": "%",
    "percent": "%",
    "percentage": "%",
    "pct": "%",
    "dollar": "$",
    "usd": "$",
    "cent": "cent",
    "euro": "eur",
    "kmh": "km/h",
    "kph": "km/h",
    "mph": "mi/h",
    "unit": "",
    "square unit": "",
    "sq unit": "",
    "cubic unit": "",
    "unit^2": "",
    "unit^3": "",
}
_NO_SPACE_UNITS = (
    "mm",
    "cm",
    "km",
    "m",
    "in",
    "ft",
    "yd",
    "mi",
    "mg",
    "kg",
    "g",
    "lb",
    "ml",
    "l",
    "s",
    "min",
    "h",
    "hr",
    "deg",
    "rad",
    "mph",
    "kmh",
    "kph",
)
_DEGREE_RE = re.compile(r"\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree)\s*$")
_PERCENT_RE = re.compile(r"\s*(?:\\%|%)\s*$")
_POWER_SUFFIX_RE = re.compile(r"(?:\^\s*\{?\s*([23])\s*\}?|([²³]))$")
_WORD_UNIT_RE = re.compile(
    r"(?:(?<=[\d}).])|(?<=\d)\s|(?<=[}).])\s|(?<=\\pi)\s)\s*([A-Za-z%$][A-Za-z./ ^{}23²³$]*)$"
)


def _canon_unit(raw: str) -> str | None:
    """Canonical spelling of a unit, or None when ``raw`` does not look like one."""
    u = raw.strip().lower().replace("{", "").replace("}", "")
    u = re.sub(r"\s+", " ", u)
    power = ""
    m = _POWER_SUFFIX_RE.search(u)
    if m:
        power = "^" + (m.group(1) or {"²": "2", "³": "3"}[m.group(2)])
        u = u[: m.start()].strip()
    for prefix, p in (("square ", "^2"), ("sq. ", "^2"), ("sq ", "^2"), ("cubic ", "^3"), ("cu ", "^3")):
        if u.startswith(prefix):
            u, power = u[len(prefix) :].strip(), p
    if "/" in u or " per " in u:
        parts = re.split(r"\s*/\s*|\s+per\s+", u)
        if len(parts) == 2:
            a, b = _canon_unit(parts[0]), _canon_unit(parts[1])
            if a and b:
                return f"{a}/{b}{power}"
        return None
    if not re.fullmatch(r"[a-z%$]+(?: [a-z]+){0,2}", u):
        return None
    if u in _UNIT_CANON:
        return _UNIT_CANON[u] + power if _UNIT_CANON[u] else ""
    singular = re.sub(r"(?:es|s)$", "", u) if len(u) > 3 else u
    for cand in (singular, u[:-1] if u.endswith("s") else u):
        if cand in _UNIT_CANON:
            base = _UNIT_CANON[cand]
            return base + power if base else ""
    if u in _MATH_WORDS or len(u) < 2 or any(w in _MATH_WORDS for w in u.split()):
        return None
    return singular + power  # a counted noun ("5 apples"): a unit of its own


def split_unit(s: str) -> tuple[str, str | None]:
    """Split ``"5 cm"`` into ``("5", "cm")``; ``"30^\\circ"`` into ``("30", "deg")``; no unit → ``(s, None)``.

    Generic units ("units", "square units") come back as ``""`` (present but not explicit).
    """
    m = _DEGREE_RE.search(s)
    if m and m.start() > 0:
        return s[: m.start()].strip(), "deg"
    m = _PERCENT_RE.search(s)
    if m and m.start() > 0:
        return s[: m.start()].strip(), "%"
    m = _WORD_UNIT_RE.search(s)
    if m:
        raw = m.group(1)
        head = s[: m.start(1)].strip()
        if head and not head.endswith(("=", "+", "-", "\\")):
            unit = _canon_unit(raw)
            no_space = s[m.start(1) - 1 : m.start(1)] not in (" ",)
            if unit is not None and (
                not no_space
                or raw.strip().lower().rstrip("^23{}²³") in _NO_SPACE_UNITS
                or unit in ("deg", "%")
            ):
                return head, unit
    return s, None
