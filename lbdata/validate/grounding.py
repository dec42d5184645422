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
40", "my 25", "but I used 25"), relative ones ("10 more", "by 10", "about 7"), computed ones ("so the
difference is 25", "which gives 60"), arithmetic ("30 - 20", "5^2", ``\\frac{5}{2}``), and lists
("2, 3, 1 objects") unless the facts know the list (objects per row). The words that decide this are
in ``lexicon.yaml``. A bar named with a colour ("the red Mon bar") must have that colour. A decimal is
compared at the precision it is written with.
"""

from __future__ import annotations

import re
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

from lbdata.sources.synthetic.facts import SceneFacts, name_token
from lbdata.validate.information import has_cjk, lexicon
from lbdata.validate.tags import CJK_CHARS

_ASCII_WORD = r"[A-Za-z][A-Za-z0-9']*"  # an ASCII word (most tokens: tried first)
_OTHER_WORD = rf"|[^\W\d_{CJK_CHARS}][^\W_{CJK_CHARS}]*"  # any other word
_NUMBER = r"|(?:(?<![\w.])[-−](?=\d))?\d+(?:\.\d+)?"  # a number (a sign only when attached: "-3")
_CJK_CHAR = rf"|[{CJK_CHARS}]"  # one CJK character
_PUNCT = (
    r"|(?<!\d)\.(?!\d)|\.(?=\s|$)"  # a full stop, not a decimal point
    r"|[!?。！？\n,，、:：;；=+×*/÷^<>≈~{}\\−\-∠°%()]"
)
# The tokens are group 1; the spaces or tabs before a token are taken with it (no token starts with one),
# which spares the engine a failed try of every alternative at each of them: the same tokens, 30 % faster.
_TOKEN_RE = re.compile(r"[ \t]*(" + _ASCII_WORD + _OTHER_WORD + _NUMBER + _CJK_CHAR + _PUNCT + ")")
# On ASCII text "any other word" and "one CJK character" never match (an ASCII letter starts an ASCII
# word first): the same tokens without trying them at every position.
_ASCII_TOKEN_RE = re.compile(r"[ \t]*(" + _ASCII_WORD + _NUMBER + _PUNCT + ")")
_STOPS = frozenset(".!?。！？\n")
_COMMAS = frozenset(",，、:：")
_OPS = frozenset("=+×*/÷^<>≈~{}\\−-")
_LEX = lexicon()
_WORDS = _LEX.grounding
_RELATIVE_AFTER = _WORDS["relative_after"]
_RELATIVE_BEFORE = _WORDS["relative_before"]
_DERIVED = _WORDS["derived"]
_COUNT_NOUNS = _WORDS["count_nouns"]
_COUNT_NOUN_ONE = _WORDS["count_noun_one"]
_STEP_BEFORE = _WORDS["step_before"]
_COMPARE = _WORDS["compare"]
_LIST_JOIN = _WORDS["list_join"]
_COLOURS = _WORDS["colours"]
_ZERO_NOT_AFTER = _WORDS["zero_not_after"]


_NUM_START = frozenset("0123456789-−")
_EVENT_ORDER = itemgetter(0, 1)


def _is_num(t: str) -> bool:
    return t[0] in _NUM_START and (len(t) > 1 or t[0].isdigit())


_norm = lru_cache(maxsize=1 << 16)(name_token)


def _tokens(text: str) -> list[str]:
    """The back's tokens, each through ``name_token`` ("zero" before a noun becomes "0")."""
    toks = list(map(_norm, (_ASCII_TOKEN_RE if text.isascii() else _TOKEN_RE).findall(text)))
    if "zero" in toks:  # "zero green circles" is a count; "2 gridlines above zero" is a place
        for i, t in enumerate(toks):
            if t == "zero" and (i == 0 or toks[i - 1] not in _ZERO_NOT_AFTER):
                toks[i] = "0"
    return toks


class _Mention(NamedTuple):
    slot: str
    key: Any
    specificity: int
    start: int  # token index of the first token
    end: int  # token index after the last token


@lru_cache(maxsize=1 << 12)
def _parse_number(text: str) -> tuple[float, int]:
    t = text.replace("−", "-")
    decimals = len(t.split(".", 1)[1]) if "." in t else 0
    return float(t), decimals


def _close(value: float, stated: float, decimals: int) -> bool:
    if decimals:
        return abs(round(value, decimals) - stated) < 10 ** (-decimals) / 2 + 1e-9
    return abs(value - stated) < 1e-6


def _number_role(toks: list[str], i: int, mention_ends: set[int], cjk: bool) -> str | None:
    """``value``, ``count`` (of gridlines), ``step``, ``derived`` (after "difference", "gives": a value
    only when a name comes between it and the number before), or None when it is not a claim."""
    lex = _LEX
    n = len(toks)
    prev = toks[i - 1] if i > 0 else ""
    nxt = toks[i + 1] if i + 1 < n else ""
    after = toks[i + 2] if i + 2 < n else ""
    if prev in _OPS and not (prev == "=" and (i - 1) in mention_ends):
        return None  # arithmetic ("30 - 20", "5^2", "\frac{5}{2}"), but "AB = 5" is a claim
    if nxt in _OPS:
        return None
    # lists: "2, 3, 1 objects", "10 and 20", "(0, 2)"
    if (prev in _COMMAS or prev in _LIST_JOIN) and i >= 2 and _is_num(toks[i - 2]) and not _is_total(toks, i):
        return None  # "2, 3, 1, 6 altogether": the 6 is not in the list
    if (nxt in _COMMAS or nxt in _LIST_JOIN) and after and _is_num(after):
        return None
    before = toks[max(0, i - 4) : i]
    for j in range(len(before) - 1, -1, -1):  # since the sentence or the number before it
        t = before[j]
        if t in _STOPS or (t[0] in _NUM_START and _is_num(t)):
            before = before[j + 1 :]
            break
    following = toks[i + 1 : i + 4]
    for j, t in enumerate(following):
        if t in _STOPS:
            following = following[:j]
            break
    if not lex.disown_before.isdisjoint(before) or (cjk and lex.zh_disown_before.search("".join(before))):
        return None  # "not the 25 …", "rather than 40", "my 25", "but I used 25", "不是25"
    if not lex.disown_after.isdisjoint(following[:2]) or (
        cjk and lex.zh_disown_after.search("".join(following))
    ):
        return None  # "25 I wrote above", "18 cm was wrong", "25是错的"
    if nxt in _RELATIVE_AFTER or prev in _RELATIVE_BEFORE:
        return None
    if prev != "the" and (nxt in _COUNT_NOUNS or (toks[i] == "1" and nxt in _COUNT_NOUN_ONE)):
        return "count"  # "3 gridlines up", "1 gridline below zero"; not "the 4 gridline"
    if prev in _STEP_BEFORE or nxt == "apart":
        return "step"
    if not _DERIVED.isdisjoint(before):
        return "derived"  # "so the difference is 25", "which gives 25": a value only right after a name
    return "value"


def _mentions(toks: list[str], facts: SceneFacts) -> list[_Mention]:
    table, firsts = facts.name_table
    out: list[_Mention] = []
    n_toks = len(toks)
    end = 0
    for i in [i for i, t in enumerate(toks) if t in firsts]:
        if i < end:
            continue
        for n in firsts[toks[i]]:
            hit = table.get(tuple(toks[i : i + n])) if i + n <= n_toks else None
            if hit is not None:
                out.append(_Mention(hit[0], hit[1], hit[2], i, i + n))
                end = i + n
                break
    return out


def _bind(group: list[_Mention], toks: list[str]) -> dict[str, list[Any]]:
    """The keys a number is bound to, per slot: the most specific names, the last of a comparison."""
    if len(group) == 1:
        return {group[0].slot: [group[0].key]}
    by_slot: dict[str, list[_Mention]] = {}
    for m in group:
        by_slot.setdefault(m.slot, []).append(m)
    bound: dict[str, list[Any]] = {}
    for slot, ms in by_slot.items():
        top = max(m.specificity for m in ms)
        ms = [m for m in ms if m.specificity == top]
        for j in range(len(ms) - 1, 0, -1):  # "A is taller than B at 20": 20 is B's
            if any(t in _COMPARE for t in toks[ms[j - 1].end : ms[j].start]):
                ms = ms[j:]
                break
        bound[slot] = list(dict.fromkeys(m.key for m in ms))
    return bound


def _combos(bound: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if all(len(keys) == 1 for keys in bound.values()):
        return [{slot: keys[0] for slot, keys in bound.items()}]
    combos: list[dict[str, Any]] = [{}]
    for slot, keys in bound.items():
        combos = [{**c, slot: k} for c in combos for k in keys]
    return combos


def _list_run(toks: list[str], i: int) -> list[int]:
    """Indices of the numbers of the list starting at ``i`` ("2, 3, 1", "10 and 20"); [i] when none.

    A number followed by "altogether", "in total" or "in all" ends a list without joining it."""
    run = [i]
    j = i
    n = len(toks)
    while True:
        k = j + 1
        while k < n and (toks[k] in _COMMAS or toks[k] in _LIST_JOIN) and k - j <= 2:
            k += 1
        if k == j + 1 or k >= n or not _is_num(toks[k]) or _is_total(toks, k):
            return run
        run.append(k)
        j = k


def _is_total(toks: list[str], k: int) -> bool:
    nxt = toks[k + 1 : k + 3]
    return bool(nxt) and (nxt[0] in ("altogether", "total") or nxt in (["in", "total"], ["in", "all"]))


def figure_contradictions(back: str, facts: SceneFacts) -> list[str]:
    """What ``back`` states about the figure that ``facts`` refute, one line each (empty: nothing)."""
    toks = _tokens(back)
    mentions = _mentions(toks, facts)
    if not mentions:
        return []
    problems: list[str] = []
    cjk = has_cjk(back)
    mention_ends = {m.end - 1 for m in mentions}
    starts = {m.start: m for m in mentions}
    latest: dict[str, _Mention] = {}  # the last name of each slot in this sentence
    group: list[_Mention] = []
    pending: list[tuple[list[int], str]] = []  # numbers of this sentence waiting for a name after them
    skip_to = -1
    events = _events(toks, mentions)
    for k, (i, kind, m) in enumerate(events):
        if kind == 0:
            latest, group, pending = {}, [], []
        elif kind == 1:
            if pending:  # numbers before any name in this sentence take the names after them
                after = _names_from(events, k)
                for run, role in pending:
                    _settle(run, role, after, toks, facts, problems)
                pending = []
            group.append(m)
            latest[m.slot] = m
            _check_colour(toks, m, facts, problems)
        elif i > skip_to:
            run = _list_run(toks, i)
            skip_to = run[-1]
            role = "list" if len(run) > 1 else _number_role(toks, i, mention_ends, cjk)
            if role is None:
                continue
            if role == "step":  # the gridline step is the chart's, whatever is named around it
                _check_step(toks[i], facts, problems)
                continue
            if role == "derived":
                if not group:
                    continue  # computed from what was named before: not a part of the figure
                role = "value"  # "the red circles are at the top and the left, which makes 2"
            ahead = starts.get(run[-1] + 1)
            if ahead is not None and role != "list":  # "3 red circles", "1 red square": the name right after
                _settle(run, role, [ahead], toks, facts, problems)
            elif group:
                _settle(run, role, group, toks, facts, problems)
            elif latest:
                _settle(run, role, list(latest.values()), toks, facts, problems)
            else:
                pending.append((run, role))
            group = []
    return problems


def _events(toks: list[str], mentions: list[_Mention]) -> list[tuple[int, int, Any]]:
    """The back's events in text order: (token index, 0, None) at a sentence end, (start, 1, mention) at a
    name, (token index, 2, None) at a number not inside a name."""
    taken = {i for m in mentions for i in range(m.start, m.end)}
    events: list[tuple[int, int, Any]] = [(m.start, 1, m) for m in mentions]
    for i, t in enumerate(toks):
        if t in _STOPS:
            events.append((i, 0, None))
        elif t[0] in _NUM_START and (len(t) > 1 or t[0].isdigit()) and i not in taken:  # _is_num(t)
            events.append((i, 2, None))
    events.sort(key=_EVENT_ORDER)
    return events


def _names_from(events: list[tuple[int, int, Any]], k: int) -> list[_Mention]:
    """The names of the run of name events starting at ``events[k]``."""
    after = [events[k][2]]
    for j in range(k + 1, len(events)):
        if events[j][1] != 1:
            break
        after.append(events[j][2])
    return after


def _check_step(tok: str, facts: SceneFacts, problems: list[str]) -> None:
    """A stated gridline step must be the chart's."""
    value, decimals = _parse_number(tok)
    if facts.step is not None and not _close(float(facts.step), value, decimals):
        problems.append(f"gridline step: the back states {tok}, the figure has {facts.step}")


def _settle(
    run: list[int], role: str, group: list[_Mention], toks: list[str], facts: SceneFacts, problems: list[str]
) -> None:
    """Check the numbers at ``run`` (a ``list``, a ``value`` or a ``count``) against the names in ``group``."""
    bound = _bind(group, toks)
    stated = [_parse_number(toks[j]) for j in run]
    for combo in _combos(bound):
        if role == "list":
            expected = facts.sequence(combo)
            if expected is not None and (
                len(expected) != len(stated)
                or not all(_close(a, v, d) for a, (v, d) in zip(expected, stated, strict=False))
            ):
                said = ", ".join(toks[j] for j in run)
                problems.append(
                    f"{_describe(combo)}: the back lists {said}, the figure has "
                    f"{', '.join(f'{a:g}' for a in expected)}"
                )
            continue
        allowed = facts.allowed(combo)
        if allowed is None:
            continue
        value, decimals = stated[0]
        if role == "value":
            ok = any(_close(a, value, decimals) for a in allowed)
        else:  # a count of gridlines
            ok = facts.step is None or any(_close(abs(a), value * facts.step, decimals) for a in allowed)
        if not ok:
            shown = ", ".join(f"{a:g}" for a in sorted(allowed))
            problems.append(
                f"{_describe(combo)}: the back states {toks[run[0]]} ({role}), the figure has {shown}"
            )


def _check_colour(toks: list[str], m: _Mention, facts: SceneFacts, problems: list[str]) -> None:
    """ "the red Mon bar", "the red bar for Mon": the colour named must be the bar's."""
    actual = facts.colour_of(m.key)
    if actual is None:
        return
    before = toks[max(0, m.start - 3) : m.start]
    said = None
    if before and before[-1] in _COLOURS:
        said = before[-1]
    elif len(before) == 3 and before[1] == "bar" and before[2] in ("for", "of") and before[0] in _COLOURS:
        said = before[0]
    if said is not None and said.replace("grey", "gray") != actual:
        problems.append(
            f"{_describe({m.slot: m.key})}: the back calls it {said}, the figure draws it {actual}"
        )


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
