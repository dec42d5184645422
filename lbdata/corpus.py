"""Corpus versions: build, list, resolve, diff and load them.

``build_corpus(runs, name, config)`` turns the traces the validators accepted into a corpus version
``corpora/<name>/<version>/``: one Hugging Face config per back variant (``semantic_back``,
``solution_back``), splits ``train`` and ``test``, images embedded (``datasets.Image``), plus
``manifest.json`` and the dataset card ``README.md``. The version id is a hash of the canonical rows
and the build configuration, so the same inputs give the same id on any machine and building twice
makes no new version.

How rows are chosen, per config:

1. Dedup. Problems with the same images (sha256) and normalised question are one problem; traces
   with the same text for the same problem are one trace. At most ``per_problem`` traces per problem.
2. Units. A problem contributes up to ``per_problem`` units; unit ``j`` can be a back row (the j-th
   accepted back trace) or a plain row (the j-th accepted plain teacher trace, else the j-th back
   trace with its ``<back>`` segments removed and its thinks joined: mode ``derived``, which must
   itself validate as ``plain``).
3. Split. Problems sharing an image are grouped; whole groups go to ``test`` in seeded hash order
   until ``test_size`` of the problems are there, so no image is in both splits (the same split in
   every config).
4. Mix. Per config and split, the most rows whose back count is exactly
   ``round_half_up(reflection_rate × rows)``; which units become back rows is seeded hash order.

Plain rows keep the config's model-facing instruction in the user turn: the model trained on a config
sees one prompt and learns that not every answer needs a look back (the paper's reflection rate).
Rows are streamed to Parquet in fixed row groups, so memory stays flat as the corpus grows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import statistics
import sys
import unicodedata
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lbdata import __version__
from lbdata.errors import CorpusError, UsageError
from lbdata.hashing import canonical_json, content_hash
from lbdata.ledger import Ledger
from lbdata.prompts import user_prompt
from lbdata.records import BACK_VARIANTS, Trace, parse_variant
from lbdata.workspace import check_name, corpora_dir, ensure_writable_dir, resolve_run

log = logging.getLogger(__name__)

CONFIGS: tuple[str, ...] = BACK_VARIANTS
SPLITS: tuple[str, ...] = ("train", "test")
MANIFEST_FILE = "manifest.json"
CARD_FILE = "README.md"
DATA_DIR = "data"
ROW_GROUP_SIZE = 100
"""Rows per Parquet row group (fixed, so files are byte-identical; small, as rows carry images)."""
MAX_SHARD_BYTES = 500 * 1024 * 1024
"""A split is cut into shards of about this many bytes (image bytes plus trace text)..."""
MAX_SHARD_ROWS = 10_000
"""... and of at most this many rows (a Parquet writer holds metadata for every row group of its file)."""
DEFAULT_REFLECTION_RATE = 0.4
"""Share of rows with ``<back>``: the middle of the 30–50 % band the Look-Back paper found best."""


class BuildConfig(BaseModel):
    """How a corpus is built from runs. Every field enters the version id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variants: tuple[str, ...] = Field(
        default=CONFIGS, description="back variants to build; each becomes one Hugging Face config"
    )
    reflection_rate: float = Field(
        default=DEFAULT_REFLECTION_RATE, ge=0.0, le=1.0,
        description="share of rows that contain <back>; the other rows are plain traces",
    )
    test_size: float = Field(default=0.05, ge=0.0, lt=1.0, description="share of problems in the test split")
    seed: int = Field(default=0, description="seed of the split, the mix and the row order")
    per_problem: int = Field(default=1, ge=1, description="rows per problem and config (K traces per problem)")
    license: str = Field(default="unknown", description="license id written into the card (e.g. cc-by-4.0)")

    @field_validator("variants", mode="before")
    @classmethod
    def _variants(cls, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        out: list[str] = []
        for item in items:
            name = parse_variant(item)
            if name not in CONFIGS:
                raise ValueError(f"{item!r} is not a back variant; a corpus config is one of: semantic, solution")
            if name not in out:
                out.append(name)
        if not out:
            raise ValueError("at least one variant is required, e.g. semantic,solution")
        return tuple(out)


@dataclass
class BuildResult:
    """What ``build_corpus`` did: the version, where it lives, and whether it was new."""

    name: str
    version: str
    path: Path
    created: bool
    manifest: dict[str, Any]


# ---------------------------------------------------------------------------- trace text helpers
_BACK_RE = re.compile(r"\s*<back>.*?</back>\s*", re.S)
_THINK_JOIN_RE = re.compile(r"\s*</think>\s*<think>\s*")


def derive_plain_text(text: str) -> str:
    """A back trace without its ``<back>`` segments, the thinks around them joined into one."""
    return _THINK_JOIN_RE.sub(" ", _BACK_RE.sub(" ", text)).strip()


def back_count(text: str) -> int:
    return text.count("<back>")


def normalise_question(question: str) -> str:
    """The dedup form of a question: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


def _norm_answer(answer: str) -> str:
    return " ".join(answer.split()).casefold()


def _rank(seed: int, *parts: str) -> int:
    digest = hashlib.sha256("\x00".join((str(seed), *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _round_half_up(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_HALF_UP))


def mix_counts(back_only: int, both: int, plain_only: int, rate: float) -> tuple[int, int]:
    """``(back rows, plain rows)``: the most rows whose back count is exactly round_half_up(rate × rows).

    ``back_only`` units can only be back rows, ``plain_only`` only plain rows, ``both`` either.
    """
    r = Decimal(str(rate))
    for total in range(back_only + both + plain_only, 0, -1):
        k = _round_half_up(r * total)
        m = total - k
        if k <= back_only + both and m <= plain_only + both - max(0, k - back_only):
            return k, m
    return 0, 0


# ---------------------------------------------------------------------------- validation seam
def _validation_config(path: str | os.PathLike[str] | None):
    from lbdata.validate import ValidationConfig

    return ValidationConfig.from_yaml(path) if path is not None else ValidationConfig()


def _validate_plain(text: str, group: _Group, config) -> tuple[bool, list[str]]:
    from lbdata.validate import validate_trace

    verdict = validate_trace(text, variant="plain", gold=group.answer, question=group.question,
                             choices=group.choices, config=config)
    return verdict.accepted, list(verdict.reasons)


def _validate_run(run_dir: Path, config, progress: bool) -> None:
    from lbdata.validate import validate_run

    validate_run(run_dir, config=config, progress=progress)


# ---------------------------------------------------------------------------- pass 1: candidates
@dataclass(slots=True)
class _Cand:
    trace_id: str
    run: int
    problem_id: str
    variant: str
    text_sha: bytes
    text_len: int


@dataclass(slots=True)
class _Group:
    """One deduplicated problem (same images and normalised question)."""

    problem_id: str
    run: int
    question: str
    answer: str
    choices: list[str] | None
    source: str
    images: tuple[str, ...]  # file names "<sha256>.<ext>"
    image_bytes: int
    members: dict[str, str] | None = None  # with duplicates only: problem id -> normalised answer
    traces: dict[str, list[_Cand]] = field(default_factory=dict)  # variant -> candidates
    split: str = "train"


@dataclass(slots=True)
class _Row:
    """One planned row: which trace, how it is used, where it goes."""

    config: str
    split: str
    group: _Group
    kind: str  # back | plain | derived
    cand: _Cand
    order: int


class _Inputs:
    """The runs of a build, opened, validated, and read into deduplicated problem groups."""

    def __init__(self, run_dirs: list[Path], validation, variants: tuple[str, ...], progress: bool = False):
        self.progress = progress
        self.run_dirs = run_dirs
        self.validation = validation
        self.config_hash: str = validation.config_hash
        self.ledgers = [Ledger.open(d) for d in run_dirs]
        self.groups: dict[bytes, _Group] = {}
        self.rejects: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.inputs: list[dict[str, Any]] = []
        self.total_traces = 0
        self.accepted = 0
        self._variants = (*variants, "plain")

    def close(self) -> None:
        for ledger in self.ledgers:
            ledger.close()

    def read(self) -> None:
        for idx, ledger in enumerate(self.ledgers):
            counts = ledger.counts()
            if counts["traces"] == 0:
                raise CorpusError(
                    f"run {ledger.run_dir} has no completed traces; generate some with "
                    f"`lbdata generate --run {ledger.run_dir}` or leave it out"
                )
            passed, failed = self._verdicts(ledger)
            if len(passed) + len(failed) < counts["traces"]:
                log.info("validating the traces of %s that lack a verdict under config %s", ledger.run_dir,
                         self.config_hash)
                _validate_run(ledger.run_dir, self.validation, self.progress)
                passed, failed = self._verdicts(ledger)
            accepted = 0
            by_problem: dict[str, bytes] = {}
            for trace in ledger.iter_traces():
                self.total_traces += 1
                if trace.id not in passed:
                    reasons = failed.get(trace.id)
                    self.rejects.update(["unvalidated"] if reasons is None else reasons or ["rejected"])
                    continue
                accepted += 1
                if trace.variant not in self._variants:
                    continue
                gkey = by_problem.get(trace.problem_id)
                if gkey is None:
                    gkey = by_problem[trace.problem_id] = self._group_for(ledger, idx, trace.problem_id)
                variant = sys.intern(trace.variant)
                self.groups[gkey].traces.setdefault(variant, []).append(
                    _Cand(
                        trace_id=trace.id,
                        run=idx,
                        problem_id=sys.intern(trace.problem_id),
                        variant=variant,
                        text_sha=hashlib.sha256(trace.text.encode()).digest()[:16],
                        text_len=len(trace.text),
                    )
                )
            self.accepted += accepted
            config = ledger.read_config()
            self.inputs.append(
                {
                    "run": ledger.run_dir.name,
                    "ledger_digest": ledger.digest(),
                    "problems": counts["problems"],
                    "traces": counts["traces"],
                    "accepted": accepted,
                    "cost_usd": round(counts["cost_usd"], 6),
                    "source": _source_info(config),
                    "teacher": (config.get("config") or {}).get("teacher"),
                }
            )
        if self.accepted == 0:
            top = ", ".join(f"{r}={n}" for r, n in self.rejects.most_common(3)) or "none"
            raise CorpusError(
                f"no trace in {', '.join(str(d) for d in self.run_dirs)} was accepted by the validators "
                f"(config {self.config_hash}; top reasons: {top}); inspect them with `lbdata show RUN --rejected`"
            )
        self._resolve_duplicates()

    def _verdicts(self, ledger: Ledger) -> tuple[set[str], dict[str, list[str]]]:
        """Ids of the accepted traces, and the reasons of the rejected ones, under the build's config."""
        passed: set[str] = set()
        failed: dict[str, list[str]] = {}
        for v in ledger.iter_verdicts(self.config_hash):
            if v.accepted:
                passed.add(v.trace_id)
            else:
                failed[v.trace_id] = v.reasons
        return passed, failed

    def _group_for(self, ledger: Ledger, idx: int, problem_id: str) -> bytes:
        """The key of the dedup group of a problem (the canonical problem: smallest id, then first run)."""
        problem = ledger.get_problem(problem_id)
        files = tuple(ref.filename for ref in problem.images)
        key = hashlib.sha256(
            canonical_json([[ref.sha256 for ref in problem.images], normalise_question(problem.question)]).encode()
        ).digest()[:16]
        group = self.groups.get(key)
        if group is not None:  # the same images and question seen before: a duplicate
            if group.members is None:
                group.members = {group.problem_id: _norm_answer(group.answer)}
            group.members[problem_id] = _norm_answer(problem.answer)
        if group is None or (problem_id, idx) < (group.problem_id, group.run):
            canonical = _Group(
                problem_id=problem.id, run=idx, question=problem.question, answer=problem.answer,
                choices=list(problem.choices) if problem.choices is not None else None, source=problem.source,
                images=files, image_bytes=sum(ledger.image_path(fn).stat().st_size for fn in files),
            )
            if group is not None:
                canonical.members, canonical.traces = group.members, group.traces
            self.groups[key] = canonical
        return key

    def _resolve_duplicates(self) -> None:
        """Drop traces of duplicate problems whose answer disagrees; keep one trace per distinct text."""
        for group in self.groups.values():
            gold = _norm_answer(group.answer)
            for variant, cands in group.traces.items():
                seen: dict[str, _Cand] = {}
                for cand in sorted(cands, key=lambda c: (c.trace_id, c.run)):
                    if group.members is not None and group.members.get(cand.problem_id) != gold:
                        self.dropped["answer_conflict"] += 1
                    elif cand.text_sha in seen:
                        self.dropped["duplicate_trace"] += 1
                    else:
                        seen[cand.text_sha] = cand
                group.traces[variant] = list(seen.values())

    def trace(self, cand: _Cand) -> Trace:
        return self.ledgers[cand.run].get_trace(cand.trace_id)

    def image(self, group: _Group, filename: str) -> bytes:
        return self.ledgers[group.run].image_bytes(filename)


def _source_info(run_config: dict[str, Any]) -> dict[str, Any]:
    src = run_config.get("source")
    if isinstance(src, dict):
        return {"spec": src.get("spec") or src.get("kind"), "revision": src.get("revision")}
    spec = (run_config.get("config") or {}).get("source")
    return {"spec": spec, "revision": None}


# ---------------------------------------------------------------------------- split and mix
def _sha_of(filename: str) -> str:
    return filename.partition(".")[0]


def _assign_splits(groups: list[_Group], seed: int, test_size: float) -> None:
    """Group problems that share an image; whole image groups go to test until test_size is reached."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for g in groups:
        shas = [_sha_of(fn) for fn in g.images] or [f"noimage:{g.problem_id}"]
        for s in shas[1:]:
            a, b = find(shas[0]), find(s)
            if a != b:
                parent[max(a, b)] = min(a, b)
    components: dict[str, list[_Group]] = defaultdict(list)
    for g in groups:
        components[find(([_sha_of(fn) for fn in g.images] or [f"noimage:{g.problem_id}"])[0])].append(g)
    ordered = sorted(components, key=lambda root: _rank(seed, "split", root))
    target = _round_half_up(Decimal(str(test_size)) * len(groups))
    if test_size > 0 and len(ordered) >= 2:
        target = max(target, 1)
    n_test = 0
    for i, root in enumerate(ordered):
        if n_test >= target or i == len(ordered) - 1:
            break
        for g in components[root]:
            g.split = "test"
        n_test += len(components[root])


@dataclass(slots=True, eq=False)
class _Unit:
    """Slot ``j`` of one problem in one config: a back row, a plain row, or either."""

    rank: int
    group: _Group
    back: _Cand | None
    plain: _Cand | None  # a plain teacher trace, or (derived) the back trace to derive it from
    derived: bool
    checked: bool = False  # a derived plain form is validated only once the mix picks it

    @property
    def kind(self) -> str:
        return "both" if self.back and self.plain else ("back_only" if self.back else "plain_only")


def _plan_rows(inputs: _Inputs, config: BuildConfig) -> list[_Row]:
    """Choose the rows of every config and split (deterministic; derived traces validated here)."""
    groups = [g for g in inputs.groups.values() if any(g.traces.get(v) for v in (*config.variants, "plain"))]
    groups.sort(key=lambda g: (g.problem_id, g.images))
    _assign_splits(groups, config.seed, config.test_size)
    k, seed = config.per_problem, config.seed
    rows: list[_Row] = []
    for variant in config.variants:
        units: dict[str, list[_Unit]] = {s: [] for s in SPLITS}
        for g in groups:
            backs = sorted(g.traces.get(variant, []), key=lambda c: _rank(seed, "pick", c.trace_id))
            plains = sorted(g.traces.get("plain", []), key=lambda c: _rank(seed, "pick", c.trace_id))
            inputs.dropped["per_problem_limit"] += max(0, len(backs) - k)
            for j in range(min(k, max(len(backs), len(plains)))):
                back = backs[j] if j < len(backs) else None
                plain, derived = (plains[j], False) if j < len(plains) else (back, back is not None)
                units[g.split].append(_Unit(_rank(seed, "mix", variant, g.problem_id, str(j)), g, back, plain, derived))
        for split in SPLITS:
            chosen_back, chosen_plain = _mix(inputs, sorted(units[split], key=lambda u: u.rank),
                                             config.reflection_rate)
            inputs.dropped["mix_surplus"] += len(units[split]) - len(chosen_back) - len(chosen_plain)
            for u in chosen_back:
                assert u.back is not None
                rows.append(_Row(variant, split, u.group, "back", u.back,
                                 _rank(seed, "order", variant, u.back.trace_id)))
            for u in chosen_plain:
                assert u.plain is not None
                kind = "derived" if u.derived else "plain"
                rows.append(_Row(variant, split, u.group, kind, u.plain,
                                 _rank(seed, "order", variant, kind, u.plain.trace_id)))
    rows.sort(key=lambda r: (config.variants.index(r.config), SPLITS.index(r.split), r.order))
    return rows


def _mix(inputs: _Inputs, units: list[_Unit], rate: float) -> tuple[list[_Unit], list[_Unit]]:
    """Back rows and plain rows of one config and split, the back count exactly round_half_up(rate × rows).

    Back rows come from back-only units first, plain rows from plain-only units first, each in rank
    order. A derived plain form is validated when it is picked; one that fails turns its unit back-only
    and the mix is redone (each round only validates newly picked units).
    """
    while True:
        by_kind: dict[str, list[_Unit]] = {"back_only": [], "both": [], "plain_only": []}
        for u in units:
            by_kind[u.kind].append(u)
        n_back, n_plain = mix_counts(len(by_kind["back_only"]), len(by_kind["both"]), len(by_kind["plain_only"]),
                                     rate)
        chosen_back = (by_kind["back_only"] + by_kind["both"])[:n_back]
        used = {id(u) for u in chosen_back}
        chosen_plain = (by_kind["plain_only"] + [u for u in by_kind["both"] if id(u) not in used])[:n_plain]
        failed = False
        for u in chosen_plain:
            if u.derived and not u.checked:
                u.checked = True
                if not _derivable(inputs, u.group, u.plain):
                    u.plain, u.derived, failed = None, False, True
        if not failed:
            return chosen_back, chosen_plain


def _derivable(inputs: _Inputs, group: _Group, cand: _Cand) -> bool:
    text = derive_plain_text(inputs.trace(cand).text)
    ok, reasons = _validate_plain(text, group, inputs.validation)
    if not ok:
        inputs.dropped["derived_invalid"] += 1
        log.debug("derived plain trace of %s rejected: %s", cand.trace_id, reasons)
    return ok


# ---------------------------------------------------------------------------- rows
def derived_trace_id(base: Trace) -> str:
    return Trace.make_id(
        problem_id=base.problem_id, variant="plain", mode="derived", teacher=base.teacher,
        prompt_hash=base.prompt_hash, sample=base.sample, attempt=base.attempt, base_trace_id=base.id,
    )


def build_messages(question: str, variant: str, n_images: int, trace: str) -> list[dict[str, Any]]:
    """TRL conversational form: user = one image block per image + question and instruction; assistant = trace."""
    user = [{"type": "image", "text": None} for _ in range(n_images)]
    user.append({"type": "text", "text": user_prompt(question, variant)})
    return [
        {"role": "user", "content": user},
        {"role": "assistant", "content": [{"type": "text", "text": trace}]},
    ]


def _row_dict(inputs: _Inputs, row: _Row, *, with_images: bool) -> dict[str, Any]:
    trace = inputs.trace(row.cand)
    g = row.group
    if row.kind == "derived":
        text, trace_id, mode, base_id, variant = (
            derive_plain_text(trace.text), derived_trace_id(trace), "derived", trace.id, "plain"
        )
    else:
        text, trace_id, mode, base_id = trace.text, trace.id, trace.mode, trace.base_trace_id
        variant = trace.variant
    if with_images:
        images = [{"bytes": inputs.image(g, fn), "path": fn} for fn in g.images]
    else:
        images = [{"sha256": _sha_of(fn), "path": fn} for fn in g.images]
    n_back = back_count(text)
    return {
        "id": content_hash({"config": row.config, "trace_id": trace_id}),
        "problem_id": g.problem_id,
        "images": images,
        "question": g.question,
        "answer": g.answer,
        "choices": g.choices,
        "variant": variant,
        "trace": text,
        "messages": build_messages(g.question, row.config, len(g.images), text),
        "source": g.source,
        "teacher": trace.teacher.backend,
        "model": trace.teacher.model,
        "prompt_hash": trace.prompt_hash,
        "has_back": n_back > 0,
        "back_count": n_back,
        "mode": mode,
        "trace_id": trace_id,
        "base_trace_id": base_id,
    }


def corpus_features():
    """The ``datasets.Features`` of every corpus config (images as ``List(Image())``)."""
    from datasets import Features, Image, List, Value

    text_block = {"type": Value("string"), "text": Value("string")}
    return Features(
        {
            "id": Value("string"),
            "problem_id": Value("string"),
            "images": List(Image()),
            "question": Value("string"),
            "answer": Value("string"),
            "choices": List(Value("string")),
            "variant": Value("string"),
            "trace": Value("string"),
            "messages": List({"role": Value("string"), "content": List(text_block)}),
            "source": Value("string"),
            "teacher": Value("string"),
            "model": Value("string"),
            "prompt_hash": Value("string"),
            "has_back": Value("bool"),
            "back_count": Value("int32"),
            "mode": Value("string"),
            "trace_id": Value("string"),
            "base_trace_id": Value("string"),
        }
    )


# ---------------------------------------------------------------------------- statistics
class _Stats:
    """Per-config summary statistics for the card, accumulated while streaming."""

    def __init__(self) -> None:
        self.lengths = array("l")
        self.positions = array("d")
        self.back_counts: Counter[int] = Counter()
        self.modes: Counter[str] = Counter()
        self.teachers: set[tuple[str, str]] = set()
        self.prompt_hashes: set[str] = set()
        self.rows = 0
        self.back_rows = 0

    def add(self, row: dict[str, Any]) -> None:
        text = row["trace"]
        self.rows += 1
        self.lengths.append(len(text))
        self.modes[row["mode"]] += 1
        self.teachers.add((row["teacher"], row["model"]))
        self.prompt_hashes.add(row["prompt_hash"])
        if row["has_back"]:
            self.back_rows += 1
            self.back_counts[row["back_count"]] += 1
            self.positions.append(round(text.index("<back>") / max(1, len(text)), 4))

    def summary(self) -> dict[str, Any]:
        lengths = sorted(self.lengths)
        return {
            "rows": self.rows,
            "back_rows": self.back_rows,
            "reflection_rate": round(self.back_rows / self.rows, 4) if self.rows else 0.0,
            "backs_per_back_row": {str(k): v for k, v in sorted(self.back_counts.items())},
            "first_back_position": {
                "mean": round(statistics.fmean(self.positions), 3) if self.positions else None,
                "median": round(statistics.median(self.positions), 3) if self.positions else None,
            },
            "trace_chars": {
                "mean": round(statistics.fmean(lengths), 1) if lengths else None,
                "median": statistics.median(lengths) if lengths else None,
                "p95": lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))] if lengths else None,
                "max": lengths[-1] if lengths else None,
            },
            "modes": dict(sorted(self.modes.items())),
        }


# ---------------------------------------------------------------------------- build
def _shards(rows: list[_Row]) -> list[list[_Row]]:
    shards: list[list[_Row]] = [[]]
    size = 0
    for row in rows:
        est = row.group.image_bytes + row.cand.text_len * 2
        if shards[-1] and (size + est > MAX_SHARD_BYTES or len(shards[-1]) >= MAX_SHARD_ROWS):
            shards.append([])
            size = 0
        shards[-1].append(row)
        size += est
    return shards


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def build_corpus(
    runs: list[str | os.PathLike[str]],
    name: str,
    config: BuildConfig | None = None,
    *,
    validate_config: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> BuildResult:
    """Build (or find) the corpus version of ``runs`` under ``config``; see the module docstring."""
    config = config or BuildConfig()
    check_name(name, "corpus name")
    if not runs:
        raise UsageError("no run given; pass one or more run names or directories (`lbdata runs` lists them)")
    run_dirs = [resolve_run(str(r), home) for r in runs]
    validation = _validation_config(validate_config)
    inputs = _Inputs(run_dirs, validation, config.variants, progress)
    try:
        inputs.read()
        rows = _plan_rows(inputs, config)
        if not rows:
            raise CorpusError(
                f"no accepted trace of variant {', '.join(config.variants)} (or plain) in "
                f"{', '.join(str(d) for d in run_dirs)}; generate them with `lbdata generate --variant ...`"
            )
        identity = {"build": config.model_dump(mode="json"), "validator": inputs.config_hash}
        version, stats = _hash_rows(inputs, rows, identity)
        corpus_root = ensure_writable_dir(corpora_dir(home) / name, "corpus folder")
        final = corpus_root / version
        if (final / MANIFEST_FILE).exists():
            manifest = json.loads((final / MANIFEST_FILE).read_text())
            return BuildResult(name, version, final, False, manifest)
        previous = list_versions(name, home)
        manifest = _manifest(name, version, previous[-1]["version"] if previous else None, config, inputs,
                             rows, stats)
        tmp = corpus_root / f".tmp-{version}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _write_data(inputs, rows, tmp, progress=progress)
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            (tmp / CARD_FILE).write_text(render_card(manifest))
            if (final / MANIFEST_FILE).exists():  # built meanwhile by another process
                shutil.rmtree(tmp)
                return BuildResult(name, version, final, False, json.loads((final / MANIFEST_FILE).read_text()))
            shutil.rmtree(final, ignore_errors=True)  # a partial folder without manifest
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return BuildResult(name, version, final, True, manifest)
    finally:
        inputs.close()


def _hash_rows(inputs: _Inputs, rows: list[_Row], identity: dict[str, Any]) -> tuple[str, dict[str, _Stats]]:
    h = hashlib.sha256(canonical_json(identity).encode())
    stats: dict[str, _Stats] = defaultdict(_Stats)
    for row in rows:
        d = _row_dict(inputs, row, with_images=False)
        h.update(b"\n")
        h.update(canonical_json([row.config, row.split, d]).encode())
        stats[row.config].add(d)
    return h.hexdigest()[:12], stats


def _write_data(inputs: _Inputs, rows: list[_Row], root: Path, *, progress: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = corpus_features().arrow_schema
    bar = _progress(progress, len(rows))
    by_part: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for row in rows:
        by_part[(row.config, row.split)].append(row)
    for (cfg, split), part in by_part.items():
        folder = root / DATA_DIR / cfg
        folder.mkdir(parents=True, exist_ok=True)
        shards = _shards(part)
        for i, shard in enumerate(shards):
            with pq.ParquetWriter(folder / shard_name(split, i, len(shards)), schema, compression="snappy") as w:
                for start in range(0, len(shard), ROW_GROUP_SIZE):
                    batch = [_row_dict(inputs, r, with_images=True) for r in shard[start:start + ROW_GROUP_SIZE]]
                    w.write_table(pa.Table.from_pylist(batch, schema=schema), row_group_size=ROW_GROUP_SIZE)
                    if bar is not None:
                        bar.advance(len(batch))
    if bar is not None:
        bar.close()


class _Bar:
    def __init__(self, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(TextColumn("writing rows"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                           transient=True)
        self._p.start()
        self._task = self._p.add_task("rows", total=total)

    def advance(self, n: int) -> None:
        self._p.advance(self._task, n)

    def close(self) -> None:
        self._p.stop()


def _progress(enabled: bool, total: int) -> _Bar | None:
    return _Bar(total) if enabled else None


def _manifest(
    name: str, version: str, parent: str | None, config: BuildConfig, inputs: _Inputs, rows: list[_Row],
    stats: dict[str, _Stats],
) -> dict[str, Any]:
    counts: dict[str, dict[str, dict[str, int]]] = {}
    files: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        c = counts.setdefault(row.config, {}).setdefault(row.split, {"rows": 0, "back": 0, "plain": 0, "derived": 0})
        c["rows"] += 1
        c["back" if row.kind == "back" else "plain"] += 1
        c["derived"] += row.kind == "derived"
    for cfg, per_split in counts.items():
        for split in per_split:
            n = len(_shards([r for r in rows if r.config == cfg and r.split == split]))
            files.setdefault(cfg, {})[split] = [f"{DATA_DIR}/{cfg}/{shard_name(split, i, n)}" for i in range(n)]
    teachers = sorted({t for s in stats.values() for t in s.teachers})
    return {
        "name": name,
        "version": version,
        "parent": parent,
        "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "lbdata_version": __version__,
        "build": config.model_dump(mode="json"),
        "validator_config_hash": inputs.config_hash,
        "inputs": inputs.inputs,
        "configs": [c for c in config.variants if c in counts],
        "counts": counts,
        "files": files,
        "rejects": {k: v for k, v in sorted(inputs.rejects.items()) if v},
        "dropped": {k: v for k, v in sorted(inputs.dropped.items()) if v},
        "traces_read": inputs.total_traces,
        "traces_accepted": inputs.accepted,
        "teachers": [{"backend": b, "model": m} for b, m in teachers],
        "models": sorted({m for _, m in teachers}),
        "prompt_hashes": sorted({p for s in stats.values() for p in s.prompt_hashes}),
        "sources": sorted({row.group.source for row in rows}),
        "stats": {cfg: s.summary() for cfg, s in stats.items()},
        "row_group_size": ROW_GROUP_SIZE,
    }


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` rows."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def render_card(manifest: dict[str, Any], repo: str | None = None) -> str:
    """The dataset card (README.md with the Hub YAML header) of a version, from ``cards/corpus.md.j2``.

    ``repo`` (ORG/NAME) is the Hub dataset the card is pushed to; it shows in the loading example.
    """
    import jinja2

    from lbdata.resources import resource_path

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True)
    template = env.from_string(resource_path("cards", "corpus.md.j2").read_text(encoding="utf-8"))
    total = sum(s["rows"] for per in manifest["counts"].values() for s in per.values())
    return template.render(m=manifest, repo=repo, splits=SPLITS, total_rows=total, size_category=size_category(total))


# ---------------------------------------------------------------------------- versions
def _manifest_of(path: Path) -> dict[str, Any]:
    return json.loads((path / MANIFEST_FILE).read_text())


def list_corpora(home: str | os.PathLike[str] | None = None) -> list[str]:
    root = corpora_dir(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob(f"*/{MANIFEST_FILE}")))


def list_versions(name: str, home: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Manifests of the versions of ``name``, oldest first (by creation time, then id)."""
    root = corpora_dir(home) / name
    if not root.is_dir():
        return []
    manifests = [_manifest_of(p) for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST_FILE).exists()]
    return sorted(manifests, key=lambda m: (m.get("created_at", ""), m["version"]))


def resolve_version(spec: str, home: str | os.PathLike[str] | None = None) -> Path:
    """The folder of ``NAME@VER`` (a unique prefix of the id will do), ``NAME@latest`` or ``NAME`` (latest).

    A path to a version folder (one holding ``manifest.json``) is accepted as is.
    """
    if "@" not in spec and (Path(spec) / MANIFEST_FILE).exists():
        return Path(spec)
    name, _, ver = spec.partition("@")
    ver = ver or "latest"
    versions = list_versions(name, home) if name else []
    if not versions:
        known = list_corpora(home)
        hint = f"known corpora: {', '.join(known)}" if known else "build one with `lbdata build RUN --name NAME`"
        raise CorpusError(f"no corpus {name!r} under {corpora_dir(home)}; {hint}")
    ids = [m["version"] for m in versions]
    if ver == "latest":
        return corpora_dir(home) / name / ids[-1]
    matches = [v for v in ids if v == ver] or ([v for v in ids if v.startswith(ver)] if len(ver) >= 4 else [])
    if len(matches) != 1:
        what = "is ambiguous" if matches else "is unknown"
        raise CorpusError(f"version {ver!r} of {name} {what}; known versions: {', '.join(ids)} (or 'latest')")
    return corpora_dir(home) / name / matches[0]


def read_manifest(spec: str, home: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    return _manifest_of(resolve_version(spec, home))


def data_files(path: Path, config: str, split: str) -> list[Path]:
    """The Parquet shards of one config and split of a version folder (sorted)."""
    files = sorted((path / DATA_DIR / config).glob(f"{split}-*.parquet"))
    if not files:
        manifest = _manifest_of(path)
        avail = ", ".join(f"{c}/{s}" for c, per in manifest["counts"].items() for s in per)
        raise CorpusError(f"{path} has no {config}/{split} data; available: {avail}")
    return files


def load_corpus(
    spec: str, *, config: str = "semantic_back", split: str = "train", home: str | os.PathLike[str] | None = None
):
    """One config and split of a corpus version as a ``datasets.Dataset`` (images decode to PIL)."""
    import datasets

    path = resolve_version(spec, home)
    files = data_files(path, parse_variant(config), split)
    return datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split)


def iter_rows(path: Path, config: str, split: str, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Rows of one config and split, streamed row group by row group (images as {bytes, path})."""
    import pyarrow.parquet as pq

    for f in data_files(path, config, split):
        pf = pq.ParquetFile(f)
        for i in range(pf.num_row_groups):
            yield from pf.read_row_group(i, columns=columns).to_pylist()


# ---------------------------------------------------------------------------- diff
_DIFF_COLUMNS = ["id", "problem_id", "question", "answer", "choices", "variant", "trace", "source", "teacher",
                 "model", "prompt_hash", "mode", "trace_id"]


def _row_digests(path: Path, manifest: dict[str, Any]) -> dict[tuple[str, str, int], tuple[str, str]]:
    """``(config, problem_id, n) -> (split, digest)`` of every row of a version (no image bytes read)."""
    import pyarrow.parquet as pq

    out: dict[tuple[str, str, int], tuple[str, str]] = {}
    for cfg, per_split in manifest["counts"].items():
        per_problem: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for split in per_split:
            for f in data_files(path, cfg, split):
                pf = pq.ParquetFile(f)
                table = pf.read(columns=_DIFF_COLUMNS)
                images = pf.read(columns=["images.list.element.path"]).column(0).to_pylist()
                for rec, imgs in zip(table.to_pylist(), images, strict=True):
                    rec["images"] = [i["path"] for i in imgs]
                    rid = rec.pop("id")
                    per_problem[rec["problem_id"]].append((rid, split, content_hash(rec, 32)))
        for pid, items in per_problem.items():
            for n, (_, split, digest) in enumerate(sorted(items)):
                out[(cfg, pid, n)] = (split, digest)
    return out


def diff_versions(spec_a: str, spec_b: str, home: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Rows added, removed and changed from A to B per config (a row is keyed by config and problem), and counts."""
    pa_, pb_ = resolve_version(spec_a, home), resolve_version(spec_b, home)
    ma, mb = _manifest_of(pa_), _manifest_of(pb_)
    da, db = _row_digests(pa_, ma), _row_digests(pb_, mb)
    per_config: dict[str, dict[str, int]] = {}
    for cfg in sorted({k[0] for k in da} | {k[0] for k in db}):
        ka = {k for k in da if k[0] == cfg}
        kb = {k for k in db if k[0] == cfg}
        changed = sum(1 for k in ka & kb if da[k] != db[k])
        per_config[cfg] = {
            "added": len(kb - ka),
            "removed": len(ka - kb),
            "changed": changed,
            "unchanged": len(ka & kb) - changed,
        }
    return {
        "a": {"name": ma["name"], "version": ma["version"], "counts": ma["counts"]},
        "b": {"name": mb["name"], "version": mb["version"], "counts": mb["counts"]},
        "configs": per_config,
    }
