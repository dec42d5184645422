"""The evaluation loop: generate in batches, score, append to ``results.jsonl``, resume, report."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lbdata import __version__
from lbdata.errors import UsageError
from lbdata.eval.config import EvalConfig
from lbdata.eval.data import EvalItem
from lbdata.eval.generators import FAILED, GenerationParams, Generator, LocalModel
from lbdata.eval.report import RESULTS_FILE, EvalReport
from lbdata.eval.scoring import EvalRow, score_response
from lbdata.hashing import content_hash
from lbdata.progress import ProgressBar
from lbdata.prompts import user_prompt
from lbdata.records import BadRow, parse_variant
from lbdata.sources.base import SourceRow
from lbdata.workspace import RunBusy, RunLock

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"


def _as_generator(model_or_client: Any) -> Generator:
    if isinstance(model_or_client, str | Path):
        return LocalModel(model_or_client)
    return model_or_client


def _as_items(problems: Iterable[Any], skipped: dict[str, dict[str, int]]) -> list[EvalItem]:
    items: list[EvalItem] = []
    for p in problems:
        if isinstance(p, EvalItem):
            items.append(p)
        elif isinstance(p, SourceRow):
            items.append(EvalItem(p.problem.source, p.problem, p.images))
        elif isinstance(p, BadRow):
            skipped.setdefault(p.source, {})
            skipped[p.source][p.reason] = skipped[p.source].get(p.reason, 0) + 1
        else:
            raise UsageError(f"cannot evaluate a {type(p).__name__}; pass EvalItem or SourceRow objects")
    return items


def _eval_stats(rows: list[EvalRow]) -> str:
    """Running accuracy and trigger rate."""
    if not rows:
        return ""
    acc = sum(r.correct for r in rows) / len(rows)
    trig = sum(r.has_back for r in rows) / len(rows)
    return f"acc {100 * acc:.1f}%  back {100 * trig:.1f}%"


def _identity(generator: Generator, variant: str, params: GenerationParams) -> dict[str, Any]:
    """What makes two responses to the same problem interchangeable (a resumed run must match it)."""
    return {
        "model": generator.label,
        "fingerprint": generator.fingerprint(),
        "variant": variant,
        "max_new_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "seed": params.seed,
    }


def _drop_cut_line(path: Path) -> None:
    """Cut a last line left without its newline by a crash, so the next append starts on a line of its own."""
    data = path.read_bytes() if path.exists() else b""
    if data and not data.endswith(b"\n"):
        with path.open("rb+") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def _resume(out: Path, identity: dict[str, Any]) -> list[EvalRow]:
    """Rows already answered in ``out`` by an evaluation with the same settings; [] for a new folder."""
    config_path = out / CONFIG_FILE
    if not config_path.exists():
        return []
    previous = json.loads(config_path.read_text(encoding="utf-8")).get("identity")
    if previous != identity:
        changed = sorted(k for k in identity if (previous or {}).get(k) != identity[k])
        raise UsageError(
            f"{out} holds an evaluation with other settings (different {', '.join(changed)}); "
            "pass another --out or delete that folder"
        )
    rows: dict[tuple[str, str], EvalRow] = {}
    path = out / RESULTS_FILE
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                row = EvalRow.model_validate_json(line)
            except ValidationError:  # a line cut short by a crash: that problem is answered again
                log.warning("ignoring an unreadable line of %s", path)
                continue
            if row.finish_reason == FAILED:  # failed requests are asked again
                continue
            rows.setdefault((row.dataset, row.problem_id), row)  # two evals into one folder: count it once
    return list(rows.values())


def _make_out_dir(out: Path) -> None:
    """Create the evaluation folder, or say in one line why ``--out`` cannot be one."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; pass --out with a folder for the evaluation")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write the evaluation to {out} ({exc.strerror or exc}); pass --out with a writable "
                         "folder") from None


def _start_out_dir(
    out: Path, identity: dict[str, Any], items: list[EvalItem], order: dict[tuple[str, str], int], batch_size: int
) -> tuple[list[EvalRow], list[EvalItem]]:
    """Prepare ``out`` for appending: (rows already answered there, items still to ask).

    The config is written whole (a kill never leaves half of one) and a line cut short by a crash is
    dropped, so the next append starts on a line of its own.
    """
    _make_out_dir(out)
    rows = [r for r in _resume(out, identity) if (r.dataset, r.problem_id) in order]
    done = {(r.dataset, r.problem_id) for r in rows}
    if rows:
        log.info("resuming %s: %d of %d problems already answered", out, len(done), len(items))
    items = [it for it in items if (it.dataset, it.problem.id) not in done]
    config = {"identity": identity, "params": {"batch_size": batch_size}, "lbdata_version": __version__}
    tmp = out / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / CONFIG_FILE)  # whole or not at all: a kill never leaves half a config
    _drop_cut_line(out / RESULTS_FILE)
    return rows, items


def evaluate(
    model_or_client: Any,
    problems: Iterable[Any],
    variant: str | None = None,
    *,
    config: EvalConfig | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    out_dir: str | Path | None = None,
    skipped: dict[str, dict[str, int]] | None = None,
    progress: bool = False,
) -> EvalReport:
    """Generate a response for every problem, score it, and return the report.

    ``model_or_client``: a checkpoint path (run locally with transformers), a ``LocalModel`` or a
    ``ServedModel``, or anything with the ``Generator`` interface. ``problems``: ``EvalItem``,
    ``SourceRow`` (counted under ``problem.source``) or ``BadRow`` (counted as skipped) objects, e.g.
    ``load_eval_data([...]).items`` or ``itertools.islice(load_source("synthetic", seed=1), 50)``.
    The settings come from ``config`` (an ``EvalConfig``; default: its defaults); ``variant``
    (``semantic``, ``solution`` or ``none``/``plain``), ``max_new_tokens``, ``temperature``, ``seed`` and
    ``batch_size``, when given, replace the config's (``limit`` is for ``load_eval_data``). With
    ``out_dir`` the rows are appended to ``results.jsonl`` as batches finish and a re-run with the same
    model and generation settings resumes (more problems or datasets extend it); at the end
    ``results.jsonl`` is rewritten with this evaluation's rows, in problem order, and the summary files
    are written.
    """
    config = (config or EvalConfig()).replace(variant=variant, max_new_tokens=max_new_tokens,
                                              temperature=temperature, seed=seed, batch_size=batch_size)
    variant, params, batch_size = config.variant, config.generation, config.batch_size
    skipped = {k: dict(v) for k, v in (skipped or {}).items()}
    items = _as_items(problems, skipped)
    order = {(it.dataset, it.problem.id): i for i, it in enumerate(items)}
    datasets = list(dict.fromkeys([*skipped, *(it.dataset for it in items)]))
    generator = _as_generator(model_or_client)

    identity = _identity(generator, variant, params)
    with _writer_lock(out_dir):
        rows: list[EvalRow] = []
        if out_dir is not None:
            rows, items = _start_out_dir(Path(out_dir), identity, items, order, batch_size)
        started = time.monotonic()
        _generate_rows(generator, items, rows, variant, params, batch_size, out_dir, progress)
        log.info("evaluated %d responses in %.1fs", len(rows), time.monotonic() - started)

        rows.sort(key=lambda r: order.get((r.dataset, r.problem_id), len(order)))
        report = EvalReport(
            model=generator.label,
            variant=variant,
            params=asdict(params),
            rows=rows,
            skipped=skipped,
            datasets=datasets,
        )
        if out_dir is not None:
            report.write(out_dir)
    return report


@contextmanager
def _writer_lock(out_dir: str | Path | None) -> Iterator[None]:
    """Hold the writer lock of the evaluation folder (none without one): a second ``lbdata eval`` into the
    same ``--out`` is refused at once instead of interleaving its rows with the first one's."""
    if out_dir is None:
        yield
        return
    out = Path(out_dir)
    _make_out_dir(out)
    try:
        lock = RunLock(out)
    except RunBusy:
        raise UsageError(f"{out} is being written by another lbdata eval; wait for it to finish or pass "
                         "another --out") from None
    with lock:
        yield


def _generate_rows(
    generator: Generator, items: list[EvalItem], rows: list[EvalRow], variant: str, params: GenerationParams,
    batch_size: int, out_dir: str | Path | None, progress: bool,
) -> None:
    """Ask ``generator`` about ``items`` in batches, scoring into ``rows`` and appending each batch to the
    folder's ``results.jsonl`` as it finishes (a kill keeps every finished batch)."""
    results_fh = (Path(out_dir) / RESULTS_FILE).open("a", encoding="utf-8") if out_dir is not None else None
    bar = ProgressBar("eval", len(items) + len(rows), enabled=progress, completed=len(rows), unit="responses")
    try:
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            prompts = [user_prompt(it.problem.question, variant) for it in batch]
            generations = generator.generate(batch, prompts, params)
            new = [
                score_response(it, prompt, gen, variant=variant, model=generator.label)
                for it, prompt, gen in zip(batch, prompts, generations, strict=True)
            ]
            rows.extend(new)
            if results_fh is not None:
                results_fh.writelines(r.model_dump_json() + "\n" for r in new)
                results_fh.flush()
            bar.update(completed=len(rows), stats=lambda: _eval_stats(rows))
    finally:
        bar.close()
        if results_fh is not None:
            results_fh.close()


def default_out_dir(
    home: str | Path, generator: Generator, variant: str, params: GenerationParams, datasets: list[str]
) -> Path:
    """``<home>/evals/<model>-<variant>-<hash>``: the same settings give the same folder, so a re-run resumes."""
    variant = parse_variant(variant)
    identity = {**_identity(generator, variant, params), "datasets": datasets}
    slug = re.sub(r"[^A-Za-z0-9]+", "-", generator.label.rstrip("/").split("/")[-1]).strip("-").lower()[:40] or "model"
    return Path(home) / "evals" / f"{slug}-{variant}-{content_hash(identity, 8)}"
