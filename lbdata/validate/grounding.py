"""``figure_contradictions``: what a ``<back>`` says about a synthetic figure that its scene facts refute.

The back is read as tokens, sentence by sentence. Names of the figure's parts come from the typed
facts (``lbdata.sources.synthetic.facts``): "the Mon bar", "side AB", "from A to B", "the angle at C",
"x = 3", "red circles", "the Ana row … the Math column". Each number is bound to the parts named since
the number before it in the sentence (or, when the sentence names none before it, the ones it names
next: "3 red circles", "42 is the entry in the Ben row") and checked against the facts:

- a value: the part's value (a bar's height, a side's length, an angle, a point's y, a cell, a count);
- a count of gridlines ("3 gridlines up") times the gridline step must give the value;
- a step ("gridlines every 10", "5 apart") must be the step.

Numbers that are not claims are left alone: rejected values ("not the 25 I wrote above", "rather than
40", "my 25", "but I used 25"), relative ones ("10 more", "by 10", "about 7"), arithmetic ("30 - 20",
"5^2", ``\\frac{5}{2}``), and lists ("2, 3, 1 objects"). A bar named with a colour ("the red Mon bar")
must have that colour. A decimal is compared at the precision it is written with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lbdata.sources.synthetic.facts import SceneFacts, name_token
from lbdata.validate.information import lexicon
from lbdata.validate.tags import CJK_CHARS

_TOKEN_RE = re.compile(
    r"(?P<num>(?:(?<![\w.])[-−](?=\d))?\d+(?:\.\d+)?)"
    rf"|(?P<word>[^\W\d_{CJK_CHARS}][^\W_{CJK_CHARS}]*(?:'[a-z]+)?)"
    rf"|(?P<cjk>[{CJK_CHARS}])"
    r"|(?P<stop>(?<!\d)\.(?!\d)|\.(?=\s|$)|[!?;。！？；\n])"
    r"|(?P<comma>[,，、:：])"
    r"|(?P<op>[=+×*/÷^<>≈~{}\\−-])"
    r"|(?P<sym>[∠°%()])"
)
_RELATIVE_AFTER = frozenset(
    "more less fewer greater higher lower larger smaller bigger longer shorter taller times percent % 倍 多 少".split()
)
_RELATIVE_BEFORE = frozenset("by about approximately roughly around nearly almost ≈ ~ 约 大约".split())
_COUNT_NOUNS = frozenset("gridlines steps ticks units lines intervals squares 格".split())
_COUNT_NOUN_ONE = frozenset("gridline step tick unit line interval square".split())
_STEP_BEFORE = frozenset("every each".split())
_COMPARE = frozenset("than 比 vs versus".split())
_LIST_JOIN = frozenset("and or 和 与".split())
_COLOURS = frozenset(
    "red blue green yellow purple orange brown pink teal gray grey black white cyan magenta".split()
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str  # normalised: labels (AB, B) keep their case, other words are lower-cased

    @property
    def is_num(self) -> bool:
        return self.kind == "num"


def _tokens(text: str) -> list[_Tok]:
    return [_Tok(m.lastgroup or "", name_token(m.group())) for m in _TOKEN_RE.finditer(text)]


@dataclass(frozen=True)
class _Mention:
    slot: str
    key: Any
    specificity: int
    start: int  # token index of the first token
    end: int  # token index after the last token


def _parse_number(text: str) -> tuple[float, int]:
    t = text.replace("−", "-")
    decimals = len(t.split(".", 1)[1]) if "." in t else 0
    return float(t), decimals


def _close(value: float, stated: float, decimals: int) -> bool:
    if decimals:
        return abs(round(value, decimals) - stated) < 10 ** (-decimals) / 2 + 1e-9
    return abs(value - stated) < 1e-6


def _number_role(toks: list[_Tok], i: int, mention_ends: set[int]) -> str | None:
    """``value``, ``count`` (of gridlines), ``step``, or None when the number is not a claim."""
    lex = lexicon()
    prev = toks[i - 1] if i > 0 else None
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    after = toks[i + 2] if i + 2 < len(toks) else None
    if prev is not None and prev.kind == "op":
        if not (prev.text == "=" and (i - 1) in mention_ends):
            return None
    if nxt is not None and nxt.kind == "op":
        return None
    # lists: "2, 3, 1 objects", "10 and 20", "(0, 2)"
    if prev is not None and (prev.kind == "comma" or prev.text in _LIST_JOIN) and i >= 2 and toks[i - 2].is_num:
        return None
    if nxt is not None and (nxt.kind == "comma" or nxt.text in _LIST_JOIN) and after is not None and after.is_num:
        return None
    before = [t.text for t in toks[max(0, i - 3) : i] if t.kind != "stop"]
    if any(w in lex.disown_before for w in before) or (
        before and lex.zh_disown_before.search("".join(before))
    ):
        return None
    following = [t.text for t in toks[i + 1 : i + 4]]
    if any(w in lex.disown_after for w in following[:2]) or lex.zh_disown_after.search("".join(following)):
        return None
    if (nxt is not None and nxt.text in _RELATIVE_AFTER) or (prev is not None and prev.text in _RELATIVE_BEFORE):
        return None
    if nxt is not None and (nxt.text in _COUNT_NOUNS or (toks[i].text == "1" and nxt.text in _COUNT_NOUN_ONE)):
        return "count"
    if (prev is not None and prev.text in _STEP_BEFORE) or (nxt is not None and nxt.text == "apart"):
        return "step"
    return "value"


def _mentions(toks: list[_Tok], facts: SceneFacts) -> list[_Mention]:
    table, longest = facts.name_table
    out: list[_Mention] = []
    i = 0
    while i < len(toks):
        found = None
        if toks[i].kind not in ("stop", "comma"):
            for n in range(min(longest, len(toks) - i), 0, -1):
                hit = table.get(tuple(t.text for t in toks[i : i + n]))
                if hit is not None:
                    found = _Mention(hit[0], hit[1], hit[2], i, i + n)
                    break
        if found is not None:
            out.append(found)
            i = found.end
        else:
            i += 1
    return out


def _bind(group: list[_Mention], toks: list[_Tok]) -> dict[str, list[Any]]:
    """The keys a number is bound to, per slot: the most specific names, the last of a comparison."""
    by_slot: dict[str, list[_Mention]] = {}
    for m in group:
        by_slot.setdefault(m.slot, []).append(m)
    bound: dict[str, list[Any]] = {}
    for slot, ms in by_slot.items():
        top = max(m.specificity for m in ms)
        ms = [m for m in ms if m.specificity == top]
        for j in range(len(ms) - 1, 0, -1):  # "A is taller than B at 20": 20 is B's
            if any(t.text in _COMPARE for t in toks[ms[j - 1].end : ms[j].start]):
                ms = ms[j:]
                break
        bound[slot] = list(dict.fromkeys(m.key for m in ms))
    return bound


def _combos(bound: dict[str, list[Any]]) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{}]
    for slot, keys in bound.items():
        combos = [{**c, slot: k} for c in combos for k in keys]
    return combos


def figure_contradictions(back: str, facts: SceneFacts) -> list[str]:
    """What ``back`` states about the figure that ``facts`` refute, one line each (empty: nothing)."""
    toks = _tokens(back)
    mentions = _mentions(toks, facts)
    if not mentions:
        return []
    problems: list[str] = []
    in_mention = {i for m in mentions for i in range(m.start, m.end)}
    mention_ends = {m.end - 1 for m in mentions}
    starts = {m.start: m for m in mentions}
    sentence_mentions: list[_Mention] = []
    group: list[_Mention] = []
    pending: list[tuple[int, str]] = []  # numbers of this sentence waiting for a name after them

    def settle(i: int, role: str, group_now: list[_Mention]) -> None:
        bound = _bind(group_now, toks)
        value, decimals = _parse_number(toks[i].text)
        for combo in _combos(bound):
            allowed = facts.allowed(combo)
            if allowed is None:
                continue
            if role == "value":
                ok = any(_close(a, value, decimals) for a in allowed)
            elif role == "count":
                ok = facts.step is None or any(_close(abs(a), value * facts.step, decimals) for a in allowed)
            else:
                ok = facts.step is None or _close(float(facts.step), value, decimals)
            if not ok:
                shown = ", ".join(f"{a:g}" for a in sorted(allowed))
                problems.append(f"{_describe(combo)}: the back states {toks[i].text} ({role}), the figure has {shown}")

    for i, tok in enumerate(toks):
        if tok.kind == "stop":
            sentence_mentions, group, pending = [], [], []
            continue
        m = starts.get(i)
        if m is not None:
            if pending:  # numbers before any name in this sentence take the names after them
                for j, role in pending:
                    settle(j, role, [m, *[x for x in mentions if m.end <= x.start < _next_num(toks, m.end)]])
                pending = []
            group.append(m)
            sentence_mentions.append(m)
            _check_colour(toks, m, facts, problems)
            continue
        if not tok.is_num or i in in_mention:
            continue
        role = _number_role(toks, i, mention_ends)
        if role is None:
            continue
        if group:
            settle(i, role, group)
        elif sentence_mentions:
            latest: dict[str, _Mention] = {}
            for x in sentence_mentions:
                latest[x.slot] = x
            settle(i, role, list(latest.values()))
        else:
            pending.append((i, role))
        group = []
    return problems


def _next_num(toks: list[_Tok], start: int) -> int:
    for j in range(start, len(toks)):
        if toks[j].is_num or toks[j].kind == "stop":
            return j
    return len(toks)


def _check_colour(toks: list[_Tok], m: _Mention, facts: SceneFacts, problems: list[str]) -> None:
    """"the red Mon bar", "the red bar for Mon": the colour named must be the bar's."""
    actual = facts.colour_of(m.key)
    if actual is None:
        return
    before = [t.text for t in toks[max(0, m.start - 3) : m.start]]
    said = None
    if before and before[-1] in _COLOURS:
        said = before[-1]
    elif len(before) == 3 and before[1] == "bar" and before[2] in ("for", "of") and before[0] in _COLOURS:
        said = before[0]
    if said is not None and said.replace("grey", "gray") != actual:
        problems.append(f"{_describe({m.slot: m.key})}: the back calls it {said}, the figure draws it {actual}")


def _describe(combo: dict[str, Any]) -> str:
    parts = []
    for slot, key in combo.items():
        if isinstance(key, tuple) and key and isinstance(key[0], tuple):
            parts.append(" ".join(v for _, v in key) or "objects")
        elif isinstance(key, tuple):
            parts.append(" ".join(str(k) for k in key))
        else:
            parts.append(f"{slot} {key}" if slot != "entity" else str(key))
    return ", ".join(parts) or "the figure"


__all__ = ["figure_contradictions"]
