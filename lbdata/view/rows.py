"""The rows of the sample browser: one JSON-ready dict per trace of a run or per row of a corpus version.

A row carries what the browser shows (question, gold and extracted answer, the trace and its coloured
segments, verdict and reasons, image references) and, beside it, the numbers the overview plots need
(words, back positions). Segments come from ``lbdata.validate.parse_trace``, the same parser the
validators use; answers are compared with ``answers_match``, the validators' own comparison.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbdata.errors import CorpusError
from lbdata.ledger import Ledger
from lbdata.records import ImageRef, Problem, Trace, Verdict
from lbdata.validate.answers import answers_match
from lbdata.validate.tags import count_words, parse_trace

ANSWER_REASONS = frozenset({"answer_wrong", "answer_hedged", "no_final_answer"})
"""Reason codes that mean the final answer does not match the gold."""


@dataclass
class ViewRow:
    """One sample: ``data`` goes into a shard as is; ``images`` are copied into the site; the rest feeds plots."""

    data: dict[str, Any]
    images: list[tuple[ImageRef, Path | bytes]]
    trace_words: int
    back_words: list[int] = field(default_factory=list)
    back_positions: list[float] = field(default_factory=list)


def segment_spans(text: str) -> tuple[list[list[Any]], str | None, list[int], list[float]]:
    """``([kind, start, end] …, extracted answer, back word counts, back start positions)`` of a trace.

    Spans cover the tags (``<think>…</think>``); the final ``\\boxed{…}`` after the last segment is an
    ``answer`` span. A back's position is where it starts, as a fraction of the trace's length.
    """
    parsed = parse_trace(text)
    spans: list[list[Any]] = [[s.kind, s.span[0], s.span[1]] for s in parsed.segments]
    boxed = [b for b in parsed.boxed if b.in_tail]
    if boxed:
        spans.append(["answer", boxed[-1].span[0], boxed[-1].span[1]])
    spans.sort(key=lambda s: s[1])
    size = max(len(text), 1)
    backs = parsed.backs
    return (
        spans,
        parsed.answer,
        [count_words(b.text) for b in backs],
        [round(b.span[0] / size, 4) for b in backs],
    )


def _row(
    *,
    n: int,
    row_id: str,
    problem_id: str,
    variant: str,
    source: str,
    question: str,
    gold: str,
    choices: list[str] | None,
    text: str,
    images: list[tuple[ImageRef, Path | bytes]],
    answer_timeout_s: float,
    verdict: Verdict | None = None,
    with_status: bool = False,
    extra: dict[str, Any] | None = None,
) -> ViewRow:
    spans, extracted, back_words, back_pos = segment_spans(text)
    if verdict is not None:
        score = verdict.scores.get("answer_match")
        match: bool | None = bool(score) if score is not None else not (ANSWER_REASONS & set(verdict.reasons))
        extracted = verdict.answer if verdict.answer is not None else extracted
    else:
        match = answers_match(gold, extracted, choices=choices, timeout_s=answer_timeout_s)
    data: dict[str, Any] = {
        "n": n,
        "id": row_id,
        "problem": problem_id,
        "variant": variant,
        "source": source,
        "question": question,
        "choices": choices or [],
        "gold": gold,
        "answer": extracted,
        "match": match,
        "text": text,
        "segments": spans,
        "images": [[ref.sha256, ref.ext, ref.width, ref.height] for ref, _ in images],
    }
    if with_status:
        data["status"] = "unvalidated" if verdict is None else ("accepted" if verdict.accepted else "rejected")
        data["reasons"] = list(verdict.reasons) if verdict is not None else []
        data["scores"] = dict(verdict.scores) if verdict is not None else {}
    data.update(extra or {})
    return ViewRow(data, images, count_words(text), back_words, back_pos)


# ---------------------------------------------------------------------------- runs
def run_rows(ledger: Ledger, config_hash: str, *, answer_timeout_s: float = 2.0) -> Iterator[ViewRow]:
    """Every completed trace of a run, in ledger order, with its problem and its verdict under ``config_hash``.

    Problems and verdicts are looked up per trace (indexed), so memory stays flat however large the run.
    When the run has judges (``lbdata judge``), a trace with backs also carries ``judgments``: one per
    judge, its claims as ``[claim, supported]`` or the status ``unjudged``.
    """
    from lbdata.judge import backs_of
    from lbdata.judgments import run_judgments, trace_judgments

    judges = ledger.judge_names()
    judged = run_judgments(ledger) if judges else {}
    problem: Problem | None = None
    for n, trace in enumerate(ledger.iter_traces()):
        if problem is None or problem.id != trace.problem_id:  # a problem's traces usually come together
            problem = ledger.get_problem(trace.problem_id)
        extra: dict[str, Any] = {"teacher": _teacher(trace), "mode": trace.mode}
        if judges and trace.variant != "plain" and backs_of(trace.text):
            extra["judgments"] = [j.as_json() for j in trace_judgments(judges, judged.get(trace.id))]
        yield _row(
            n=n,
            row_id=trace.id,
            problem_id=problem.id,
            variant=trace.variant,
            source=problem.source,
            question=problem.question,
            gold=problem.answer,
            choices=problem.choices,
            text=trace.text,
            images=[(ref, ledger.image_path(ref.filename)) for ref in problem.images],
            answer_timeout_s=answer_timeout_s,
            verdict=ledger.get_verdict(trace.id, config_hash),
            with_status=True,
            extra=extra,
        )


def _teacher(trace: Trace) -> str:
    return f"{trace.teacher.backend}/{trace.teacher.model}"


# ---------------------------------------------------------------------------- corpora
CORPUS_COLUMNS = ("id", "problem_id", "images", "question", "answer", "variant", "trace")
"""Columns a corpus version must have for the viewer (others are shown when present)."""


def image_ref(data: bytes) -> ImageRef:
    """An ``ImageRef`` for embedded image bytes: sha256, the format's extension, size in pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            ext = {"JPEG": "jpg"}.get(im.format or "", (im.format or "png").lower())
            width, height = im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise CorpusError(f"an embedded image cannot be read ({exc}); rebuild the corpus version") from None
    return ImageRef(sha256=hashlib.sha256(data).hexdigest(), ext=ext, width=width, height=height)


def corpus_parts(version_dir: Path) -> list[tuple[str, str]]:
    """``(config, split)`` pairs of a version folder, from its manifest's counts."""
    import json

    from lbdata.corpus import MANIFEST_FILE

    manifest = json.loads((version_dir / MANIFEST_FILE).read_text())
    return [(cfg, split) for cfg, per in manifest["counts"].items() for split in sorted(per)]


def corpus_rows(
    version_dir: Path,
    *,
    only: set[str] | None = None,
    extra: dict[str, Any] | None = None,
    start: int = 0,
    answer_timeout_s: float = 2.0,
) -> Iterator[ViewRow]:
    """The rows of a corpus version (all configs and splits), or only those whose id is in ``only``."""
    from lbdata.corpus import iter_rows

    n = start
    for cfg, split in corpus_parts(version_dir):
        for rec in iter_rows(version_dir, cfg, split):
            missing = [c for c in CORPUS_COLUMNS if c not in rec]
            if missing:
                raise CorpusError(
                    f"{version_dir} lacks column(s) {', '.join(missing)}; rebuild it with this lbdata version"
                )
            if only is not None and rec["id"] not in only:
                continue
            images: list[tuple[ImageRef, Path | bytes]] = []
            for img in rec["images"] or []:
                data = img["bytes"]
                images.append((image_ref(data), data))
            teacher = "/".join(x for x in (rec.get("teacher"), rec.get("model")) if x)
            yield _row(
                n=n,
                row_id=rec["id"],
                problem_id=rec["problem_id"],
                variant=rec["variant"],
                source=rec.get("source") or "",
                question=rec["question"],
                gold=rec["answer"],
                choices=rec.get("choices"),
                text=rec["trace"],
                images=images,
                answer_timeout_s=answer_timeout_s,
                extra={"config": cfg, "split": split, "teacher": teacher, "mode": rec.get("mode"), **(extra or {})},
            )
            n += 1
