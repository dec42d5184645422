"""Pick traces from a run and render them for the terminal, segments coloured."""

from __future__ import annotations

import re

from rich.text import Text

from lbdata.errors import UsageError
from lbdata.ledger import Ledger
from lbdata.records import Problem, Trace, Verdict

_SEGMENT = re.compile(r"(<think>.*?</think>|<back>.*?</back>|\\boxed\{)", re.S)
STYLES = {"think": "cyan", "back": "bold magenta", "answer": "bold green"}


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
            raise UsageError(f"{ledger.run_dir} has no verdicts yet; run `lbdata validate {ledger.run_dir}` first")
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


def render_trace(trace: Trace, problem: Problem, verdict: Verdict | None = None) -> Text:
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
    return text
