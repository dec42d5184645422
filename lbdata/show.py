"""Pick traces from a run and render them for the terminal, segments coloured."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.text import Text

from lbdata.errors import UsageError
from lbdata.ledger import Ledger
from lbdata.records import Problem, Trace, Verdict

if TYPE_CHECKING:
    from lbdata.judgments import TraceJudgment

_SEGMENT = re.compile(r"(<think>.*?</think>|<back>.*?</back>|\\boxed\{)", re.S)
STYLES = {"think": "cyan", "back": "bold magenta", "answer": "bold green"}
SUPPORT_STYLES = {True: "green", False: "bold red", None: "yellow"}


def select_traces(
    ledger: Ledger,
    *,
    n: int,
    variant: str | None = None,
    rejected: bool = False,
    reason: str | None = None,
    config_hash: str | None = None,
) -> list[tuple[Trace, Problem, Verdict | None]]:
    """The first ``n`` traces matching the filters, with their problem and verdict (if validated)."""
    verdicts: dict[str, Verdict] = {}
    if rejected or reason:
        if config_hash is None:
            from lbdata.validate import ValidationConfig

            config_hash = ValidationConfig().config_hash
        verdicts = {v.trace_id: v for v in ledger.iter_verdicts(config_hash)}
        if not verdicts:
            if ledger.verdict_config_hashes():
                raise UsageError(
                    f"{ledger.run_dir} has no verdicts of validator settings {config_hash}, only of others; "
                    "pass --config FILE, the YAML given to `lbdata validate`, or validate again with these settings"
                )
            raise UsageError(f"{ledger.run_dir} has no verdicts yet; run `lbdata validate {ledger.run_dir}` first")
        if reason:
            check_reason(reason, {code for v in verdicts.values() for code in v.reasons})
    out: list[tuple[Trace, Problem, Verdict | None]] = []
    for trace in ledger.iter_traces(variant=variant):
        verdict = verdicts.get(trace.id)
        if rejected or reason:
            if verdict is None or verdict.accepted:
                continue
            if reason and reason not in verdict.reasons:
                continue
        out.append((trace, ledger.get_problem(trace.problem_id), verdict))
        if len(out) >= n:
            break
    return out


def check_reason(code: str, seen: Iterable[str] = ()) -> str:
    """``code`` if it is a documented reason code (or one the run's verdicts carry), else a one-line error."""
    import difflib

    from lbdata.validate.reasons import REASONS

    known = [*REASONS, *sorted(set(seen) - set(REASONS))]
    if code in known:
        return code
    close = difflib.get_close_matches(code, known, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else f"reason codes: {', '.join(known)}"
    raise UsageError(f"unknown reason code {code!r}; {hint}")


def render_trace(trace: Trace, problem: Problem, verdict: Verdict | None = None,
                 judgments: list[TraceJudgment] | None = None) -> Text:
    """The trace with its segments coloured, its problem and verdict, and (``judgments``: one per judge of
    the run) each judge's claims with ``supported`` true/false/null, or ``unjudged``."""
    text = Text()
    text.append(f"── {trace.id}  {trace.variant}  {problem.id}\n", style="bold")
    text.append("question: ", style="bold")
    text.append(problem.question + "\n")
    text.append("gold:     ", style="bold")
    text.append(problem.answer + "\n")
    if verdict is not None:
        status = "accepted" if verdict.accepted else "rejected: " + ", ".join(verdict.reasons)
        text.append(f"verdict:  {status}\n", style="green" if verdict.accepted else "red")
    pos = 0
    body = trace.text
    for m in _SEGMENT.finditer(body):
        text.append(body[pos : m.start()])
        token = m.group(0)
        if token.startswith("<think>"):
            text.append(token, style=STYLES["think"])
        elif token.startswith("<back>"):
            text.append(token, style=STYLES["back"])
        else:
            text.append(body[m.start() :], style=STYLES["answer"])
            pos = len(body)
            break
        pos = m.end()
    text.append(body[pos:])
    text.append("\n")
    for judgment in judgments or ():
        _render_judgment(text, judgment)
    return text


def _render_judgment(text: Text, judgment: TraceJudgment) -> None:
    text.append(f"judge {judgment.judge}: ", style="bold")
    if judgment.status != "judged":
        text.append("unjudged" + (f" ({judgment.error})" if judgment.error else "") + "\n", style="yellow")
        return
    n = len(judgment.claims)
    text.append(f"{n} claim{'' if n == 1 else 's'}, {judgment.refuted} refuted\n")
    for claim, supported in judgment.claims:
        text.append(f"  {_supported(supported):5}  ", style=SUPPORT_STYLES[supported])
        text.append(claim + "\n")  # the judge's words, as text: never parsed as markup


def _supported(value: bool | None) -> str:
    return "null" if value is None else str(value).lower()


# ---------------------------------------------------------------------------- `lbdata runs`
RUN_COLUMNS = ("problems", "traces", "failed", "bad rows", "cost $", "$ / 1k accepted")


def runs_listing(counts: dict[str, dict], *, style: str = "table") -> str:
    """The runs table of ``lbdata runs``: run name -> ``Ledger.counts()`` plus ``per_1k`` (USD per 1,000
    accepted traces, as ``pricing.format_per_1k`` writes it).

    The run name is the last column and is never cut, so a hashed name can be copied whole into
    ``show``/``validate``/``build`` at any terminal width. ``wide`` adds the traces per variant;
    ``plain`` is tab-separated with every column, one run per line, for scripts.
    """
    if style not in ("table", "wide", "plain"):
        raise UsageError(f"unknown listing style {style!r}; use table, wide or plain")
    rows = []
    for name, c in counts.items():
        by_variant = ", ".join(f"{k}={v}" for k, v in sorted(c["traces_by_variant"].items())) or "-"
        rows.append(([str(c["problems"]), str(c["traces"]), str(c["failed"]), str(c["bad_rows"]),
                      f"{c['cost_usd']:.4f}", c.get("per_1k", "-")], by_variant, name))
    if style == "plain":
        head = "\t".join(["run", *RUN_COLUMNS, "by variant"])
        return "\n".join([head, *("\t".join([name, *cells, by_var]) for cells, by_var, name in rows)])
    widths = [max(len(h), *(len(r[0][i]) for r in rows)) for i, h in enumerate(RUN_COLUMNS)]
    var_width = max(len("by variant"), *(len(r[1]) for r in rows))

    def line(cells: list[str], by_var: str, name: str) -> str:
        parts = [cell.rjust(w) for cell, w in zip(cells, widths, strict=True)]
        if style == "wide":
            parts.append(by_var.ljust(var_width))
        return "  ".join([*parts, name])

    return "\n".join([line(list(RUN_COLUMNS), "by variant", "run"), *(line(*r) for r in rows)])
