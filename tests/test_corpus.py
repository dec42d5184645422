"""Corpus versions as a user meets them: layout, mixing, dedup, splits, determinism, versions, diff, errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import yaml

from lbdata.corpus import (
    BuildConfig,
    build_corpus,
    derive_plain_text,
    derived_trace_id,
    diff_versions,
    list_corpora,
    list_versions,
    load_corpus,
    mix_counts,
    read_manifest,
    resolve_version,
)
from lbdata.errors import CorpusError
from lbdata.hashing import sha256_bytes
from lbdata.ledger import Ledger
from lbdata.prompts import user_prompt
from lbdata.records import ImageRef, Problem, TeacherInfo, Trace, Verdict
from lbdata.sources.base import encode_png
from lbdata.validate import ValidationConfig, validate_trace

TEACHER = TeacherInfo(backend="scene", model="scene-1", params={})


def image_bytes(i: int, size: tuple[int, int] = (40, 30)) -> bytes:
    from PIL import Image

    im = Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    im.putpixel((i % size[0], (i // size[0]) % size[1]), (255 - (i % 256), 7, 7))
    return encode_png(im)


def trace_text(variant: str, answer: str, k: int = 0) -> str:
    lead = (
        f"<think> The chart shows several bars and I need the height of the bar labelled C in the figure {k}. </think> "
    )
    if variant == "plain":
        return lead + f"\\boxed{{{answer}}}"
    if variant == "solution_back":
        lead = lead.replace(" </think>", f" It reaches {answer}, so the answer is {answer}. </think>")
    back = (
        "<back> Looking at the image again, bar C reaches the grid line marked "
        f"{answer}, above the bars A, B and D. </back> "
    )
    return lead + back + f"<think> So the bar C has height {answer} as the check showed. </think> \\boxed{{{answer}}}"


def make_run(
    run_dir: Path,
    n: int,
    *,
    variants: tuple[str, ...] = ("semantic_back", "solution_back"),
    samples: int = 1,
    reject: set[tuple[int, str]] = frozenset(),
    image_of=None,
    id_prefix: str = "syn",
    start: int = 0,
    verdicts: bool = True,
    n_images: int = 1,
    question_of=None,
) -> Path:
    """A run with ``n`` problems and one accepted trace per variant and sample, written to the ledger directly."""
    image_of = image_of or (lambda i: i)
    question_of = question_of or (lambda i: f"What is the height of bar C in chart {i}?")
    cfg_hash = ValidationConfig().config_hash
    with Ledger.create(run_dir) as ledger:
        ledger.write_config({"config": {"source": "synthetic", "teacher": "scene"}})
        out = []
        for i in range(start, start + n):
            datas = [image_bytes(image_of(i) + 100_000 * j) for j in range(n_images)]
            refs = [ImageRef(sha256=sha256_bytes(d), ext="png", width=40, height=30) for d in datas]
            answer = str(i % 9 + 1)
            problem = Problem(id=f"{id_prefix}:{i}", images=refs, question=question_of(i), answer=answer,
                              source="synthetic")
            ledger.put_problem(problem, datas)
            for variant in variants:
                for s in range(samples):
                    tid = Trace.make_id(problem_id=problem.id, variant=variant, mode="write", teacher=TEACHER,
                                        prompt_hash="p0", sample=s)
                    trace = Trace(id=tid, problem_id=problem.id, variant=variant, teacher=TEACHER, prompt_hash="p0",
                                  text=trace_text(variant, answer, s), sample=s)
                    ledger.put_trace(trace)
                    bad = (i, variant) in reject
                    out.append(Verdict(trace_id=tid, accepted=not bad, reasons=["answer_wrong"] if bad else [],
                                       config_hash=cfg_hash))
        if verdicts:
            ledger.put_verdicts(out)
    return run_dir


def rhu(x: float) -> int:
    return int(Decimal(str(x)).to_integral_value(rounding=ROUND_HALF_UP))


def files_digest(path: Path) -> dict[str, str]:
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((path / "data").rglob("*.parquet"))
    }


# ---------------------------------------------------------------------------- layout and rows
def test_build_writes_hub_layout_with_embedded_images(home, tmp_path):
    run = make_run(tmp_path / "run", 30)
    res = build_corpus([run], "demo", BuildConfig(test_size=0.1), home=home)
    assert res.created and res.path == home / "corpora" / "demo" / res.version
    for cfg in ("semantic_back", "solution_back"):
        for split in ("train", "test"):
            assert (res.path / "data" / cfg / f"{split}-00000-of-00001.parquet").exists()
    m = json.loads((res.path / "manifest.json").read_text())
    for key in ("version", "parent", "inputs", "build", "counts", "rejects", "teachers", "models", "prompt_hashes",
                "validator_config_hash", "lbdata_version", "created_at"):
        assert key in m, key
    assert m["inputs"][0]["ledger_digest"] == Ledger.open(run).digest()
    assert m["validator_config_hash"] == ValidationConfig().config_hash

    ds = load_corpus(f"demo@{res.version}", config="semantic_back", split="train", home=home)
    assert len(ds) == m["counts"]["semantic_back"]["train"]["rows"]
    need = {"id", "problem_id", "images", "question", "answer", "choices", "variant", "trace", "messages", "source",
            "teacher", "model", "prompt_hash", "has_back", "back_count"}
    assert need <= set(ds.column_names)
    row = ds[0]
    from PIL import Image

    assert isinstance(row["images"][0], Image.Image) and row["images"][0].size == (40, 30)
    user, assistant = row["messages"]
    assert user["role"] == "user" and assistant["role"] == "assistant"
    assert [b["type"] for b in user["content"]] == ["image", "text"]
    # plain rows keep the config's instruction too
    assert user["content"][1]["text"] == user_prompt(row["question"], "semantic_back")
    assert assistant["content"] == [{"type": "text", "text": row["trace"]}]
    assert row["has_back"] == ("<back>" in row["trace"]) and row["back_count"] == row["trace"].count("<back>")


def test_parquet_is_written_in_fixed_row_groups(home, tmp_path):
    import pyarrow.parquet as pq

    run = make_run(tmp_path / "run", 260, variants=("semantic_back",))
    res = build_corpus([run], "rg", BuildConfig(variants=("semantic",), test_size=0.0), home=home)
    pf = pq.ParquetFile(res.path / "data" / "semantic_back" / "train-00000-of-00001.parquet")
    sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
    assert sizes == [100, 100, 60]
    assert b"huggingface" in pf.schema_arrow.metadata


def test_large_splits_are_sharded_and_load_whole(home, tmp_path, monkeypatch):
    monkeypatch.setattr("lbdata.corpus.write.MAX_SHARD_ROWS", 40)
    run = make_run(tmp_path / "run", 100, variants=("semantic_back",))
    res = build_corpus([run], "shards", BuildConfig(variants=("semantic",), test_size=0.0), home=home)
    names = sorted(p.name for p in (res.path / "data" / "semantic_back").iterdir())
    assert names == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    assert res.manifest["files"]["semantic_back"]["train"] == [f"data/semantic_back/{n}" for n in names]
    assert len(set(load_corpus("shards", config="semantic_back", split="train", home=home)["id"])) == 100


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.35, 0.4, 0.5, 1.0])
def test_reflection_rate_counts_are_exact(home, tmp_path, rate):
    run = make_run(tmp_path / "run", 57)
    res = build_corpus([run], "mix", BuildConfig(reflection_rate=rate, test_size=0.1), home=home)
    for cfg, per_split in res.manifest["counts"].items():
        for split, c in per_split.items():
            assert c["back"] == rhu(rate * c["rows"]), (cfg, split, c)
            ds = load_corpus(f"mix@{res.version}", config=cfg, split=split, home=home)
            assert sum(ds["has_back"]) == c["back"]
            assert sum(1 for v in ds["variant"] if v == "plain") == c["plain"]
        # one row per problem: nothing lost to the mix when every problem can go either way
        assert sum(c["rows"] for c in per_split.values()) == 57


def test_mix_counts_prefers_most_rows_with_exact_share():
    assert mix_counts(0, 10, 0, 0.4) == (4, 6)
    assert mix_counts(10, 0, 0, 0.4) == (0, 0)  # no plain row to go with them: an exact share is impossible
    assert mix_counts(10, 0, 0, 1.0) == (10, 0)
    assert mix_counts(10, 0, 5, 0.5) == (6, 5)  # 11 rows, round_half_up(5.5) = 6
    k, m = mix_counts(3, 0, 100, 0.4)  # few back traces limit the plain rows
    assert k == 3 and rhu(0.4 * (k + m)) == 3


def test_mix_counts_match_a_brute_force_search():
    for back_only in range(5):
        for both in range(5):
            for plain_only in range(5):
                for rate in (0.0, 0.25, 0.3, 0.4, 0.5, 2 / 3, 1.0):
                    feasible = [
                        (b + p, b, p)
                        for b in range(back_only + both + 1)
                        for p in range(plain_only + both + 1)
                        if b + p > 0 and max(0, b - back_only) + max(0, p - plain_only) <= both
                        and b == rhu(rate * (b + p))
                    ]
                    want = max(feasible)[1:] if feasible else (0, 0)
                    k, m = mix_counts(back_only, both, plain_only, rate)
                    assert k + m == sum(want) and k == want[0], (back_only, both, plain_only, rate)


def test_union_find_roots_each_image_component_at_its_smallest_node(tmp_path):
    from lbdata.corpus.book import Book
    from lbdata.corpus.plan import UnionFind

    book = Book(tmp_path / "book.sqlite")
    try:
        uf = UnionFind(book.db)
        for a, b in [("e", "d"), ("c", "b"), ("d", "c"), ("x", "y"), ("y", "x")]:
            uf.union(a, b)
        assert {n: uf.find(n) for n in "bcdexyz"} == {
            "b": "b", "c": "b", "d": "b", "e": "b", "x": "x", "y": "x", "z": "z",  # z: never linked, its own root
        }
        links = dict(book.db.execute("SELECT node, parent FROM links").fetchall())
        assert links == {"c": "b", "d": "b", "e": "b", "y": "x"}  # finding e linked it straight to its root
    finally:
        book.close()


def test_build_progress_bar_counts_every_row_written(home, tmp_path, monkeypatch):
    import lbdata.corpus.write as write

    shown: list[str] = []

    class Recorded(write.ProgressBar):
        def close(self) -> None:
            self.update(force=True)
            shown.append(self.render_text(100))
            super().close()

    monkeypatch.setattr(write, "ProgressBar", Recorded)
    run = make_run(tmp_path / "run", 30)
    res = build_corpus([run], "bar", BuildConfig(test_size=0.1), home=home, progress=True)
    rows = sum(c["rows"] for per in res.manifest["counts"].values() for c in per.values())
    assert len(shown) == 1
    line = shown[0].splitlines()[0]
    assert line.startswith("writing rows") and f"{rows}/{rows}" in line and "rows/s" in line, shown
    build_corpus([run], "bar", BuildConfig(test_size=0.1), home=home, progress=False)  # the same version: no bar
    assert len(shown) == 1


def test_plain_rows_are_derived_when_the_run_has_no_plain_traces(home, tmp_path):
    run = make_run(tmp_path / "run", 20, variants=("solution_back",))
    res = build_corpus([run], "der", BuildConfig(variants=("solution",), test_size=0.0), home=home)
    ds = load_corpus("der", config="solution_back", split="train", home=home)
    plain = [r for r in ds if r["variant"] == "plain"]
    assert len(plain) == 12 and res.manifest["counts"]["solution_back"]["train"]["derived"] == 12
    with Ledger.open(run) as ledger:
        for r in plain:
            base = ledger.get_trace(r["base_trace_id"])
            assert r["mode"] == "derived" and "<back>" not in r["trace"]
            assert r["trace"] == derive_plain_text(base.text)
            assert r["trace_id"] == derived_trace_id(base)
            assert validate_trace(r["trace"], variant="plain", gold=r["answer"]).accepted
    # a derived trace never sits next to the back trace it came from
    assert not {r["base_trace_id"] for r in plain} & {r["trace_id"] for r in ds if r["variant"] != "plain"}


def test_plain_teacher_traces_are_preferred(home, tmp_path):
    run = make_run(tmp_path / "run", 20, variants=("semantic_back", "plain"))
    res = build_corpus([run], "pl", BuildConfig(variants=("semantic",), test_size=0.0), home=home)
    ds = load_corpus("pl", config="semantic_back", split="train", home=home)
    plain = [r for r in ds if r["variant"] == "plain"]
    assert len(plain) == 12 and all(r["mode"] == "write" and r["base_trace_id"] is None for r in plain)
    assert res.manifest["counts"]["semantic_back"]["train"]["derived"] == 0


def test_derived_traces_that_fail_plain_validation_are_not_used(home, tmp_path):
    run = make_run(tmp_path / "run", 10, variants=("semantic_back",), verdicts=False)
    with Ledger.open(run) as ledger:  # break two traces (before they are judged): their derived form has no answer
        traces = list(ledger.iter_traces())
        with ledger.transaction() as conn:
            for t in traces[:2]:
                text = t.text.replace("\\boxed{", "<back> x </back> \\boxed{", 1).replace("\\boxed", "", 1)
                conn.execute("UPDATE traces SET json=? WHERE id=?", (t.model_copy(update={"text": text}).model_dump_json(),
                                                                      t.id))
        ledger.put_verdicts([Verdict(trace_id=t.id, accepted=True, config_hash=ValidationConfig().config_hash)
                             for t in traces])  # accepted as back traces, on the text stored now
        broken = {t.problem_id for t in traces[:2]}
    # rate 0: every row must be plain, so both broken traces get picked, checked and refused
    res = build_corpus([run], "bad", BuildConfig(variants=("semantic",), test_size=0.0, reflection_rate=0.0),
                       home=home)
    assert res.manifest["dropped"]["derived_invalid"] == 2
    ds = load_corpus("bad", config="semantic_back", split="train", home=home)
    assert len(ds) == 8 and not broken & set(ds["problem_id"])
    for r in ds:
        assert r["mode"] == "derived" and validate_trace(r["trace"], variant="plain", gold=r["answer"]).accepted
    # at the default rate the mix re-plans around a refused derived trace and keeps its count exact
    mixed = build_corpus([run], "bad", BuildConfig(variants=("semantic",), test_size=0.0), home=home)
    c = mixed.manifest["counts"]["semantic_back"]["train"]
    assert c["back"] == rhu(0.4 * c["rows"]) and c["rows"] >= 9


def test_rejected_traces_are_left_out_and_counted(home, tmp_path):
    run = make_run(tmp_path / "run", 20, reject={(i, "semantic_back") for i in range(5)})
    res = build_corpus([run], "rej", BuildConfig(test_size=0.0), home=home)
    assert res.manifest["rejects"] == {"answer_wrong": 5}
    ds = load_corpus("rej", config="semantic_back", split="train", home=home)
    assert len(ds) == 15 and not {f"syn:{i}" for i in range(5)} & set(ds["problem_id"])


# ---------------------------------------------------------------------------- dedup, K, split
def test_exact_dedup_across_runs(home, tmp_path):
    a = make_run(tmp_path / "a", 20, id_prefix="srcA")
    b = make_run(tmp_path / "b", 20, id_prefix="srcB", start=10)  # problems 10..19 are the same content as in a
    res = build_corpus([a, b], "dd", BuildConfig(test_size=0.0), home=home)
    ds = load_corpus("dd", config="semantic_back", split="train", home=home)
    assert len(ds) == 30 and len(set(ds["problem_id"])) == 30
    keys = {(tuple(im.tobytes() for im in r["images"]), r["question"]) for r in ds}
    assert len(keys) == 30
    assert res.manifest["dropped"]["duplicate_trace"] == 2 * 10  # same text, two variants


def test_one_trace_per_problem_unless_per_problem(home, tmp_path):
    run = make_run(tmp_path / "run", 12, variants=("semantic_back",), samples=3)
    one = build_corpus([run], "k", BuildConfig(variants=("semantic",), test_size=0.0), home=home)
    ds = load_corpus(f"k@{one.version}", config="semantic_back", split="train", home=home)
    assert len(ds) == 12 and len(set(ds["problem_id"])) == 12
    assert one.manifest["dropped"]["per_problem_limit"] == 24
    two = build_corpus([run], "k", BuildConfig(variants=("semantic",), test_size=0.0, per_problem=2), home=home)
    ds2 = load_corpus(f"k@{two.version}", config="semantic_back", split="train", home=home)
    assert len(ds2) == 24 and all(ds2["problem_id"].count(p) == 2 for p in set(ds2["problem_id"]))
    assert len(set(ds2["trace_id"])) == 24


def test_split_is_grouped_by_image(home, tmp_path):
    run = make_run(tmp_path / "run", 60, image_of=lambda i: i // 3)  # three questions per image
    res = build_corpus([run], "sp", BuildConfig(test_size=0.2, seed=3), home=home)
    for cfg in ("semantic_back", "solution_back"):
        shas = {}
        for split in ("train", "test"):
            ds = load_corpus("sp", config=cfg, split=split, home=home).cast_column(
                "images", __import__("datasets").List(__import__("datasets").Image(decode=False)))
            shas[split] = {im["path"] for r in ds for im in r["images"]}
        assert shas["test"] and shas["train"] and not shas["train"] & shas["test"]
    test_rows = res.manifest["counts"]["semantic_back"]["test"]["rows"]
    assert test_rows % 3 == 0 and test_rows == 12


def test_split_and_order_depend_on_seed(home, tmp_path):
    run = make_run(tmp_path / "run", 40)
    a = build_corpus([run], "seed", BuildConfig(seed=0, test_size=0.2), home=home)
    b = build_corpus([run], "seed", BuildConfig(seed=1, test_size=0.2), home=home)
    assert a.version != b.version
    ta = set(load_corpus(f"seed@{a.version}", config="semantic_back", split="test", home=home)["problem_id"])
    tb = set(load_corpus(f"seed@{b.version}", config="semantic_back", split="test", home=home)["problem_id"])
    assert ta != tb


# ---------------------------------------------------------------------------- determinism and versions
_BUILD = """
import sys
from lbdata.corpus import BuildConfig, build_corpus
r = build_corpus([sys.argv[1]], "det", BuildConfig(test_size=0.1), home=sys.argv[2])
print(r.version)
"""


def test_two_processes_give_same_version_and_identical_bytes(tmp_path):
    run = make_run(tmp_path / "run", 40, variants=("semantic_back", "solution_back", "plain"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    moved = tmp_path / "elsewhere" / "run"  # another machine: the run copied to another path
    shutil.copytree(run, moved)
    outs = []
    for i, (seed, where) in enumerate((("1", run), ("2", moved))):
        env["PYTHONHASHSEED"] = seed
        home = tmp_path / f"home{i}"
        p = subprocess.run([sys.executable, "-c", _BUILD, str(where), str(home)], capture_output=True, text=True,
                           env=env, timeout=300, check=True)
        outs.append((p.stdout.strip(), home / "corpora" / "det" / p.stdout.strip()))
    (va, pa_), (vb, pb_) = outs
    assert va == vb
    da, db = files_digest(pa_), files_digest(pb_)
    assert da == db and len(da) == 4
    assert (pa_ / "README.md").read_text() == (pb_ / "README.md").read_text()


def test_building_twice_makes_no_new_version(home, tmp_path):
    run = make_run(tmp_path / "run", 20)
    first = build_corpus([run], "twice", home=home)
    before = files_digest(first.path)
    second = build_corpus([run], "twice", home=home)
    assert not second.created and second.version == first.version
    assert [m["version"] for m in list_versions("twice", home)] == [first.version]
    assert files_digest(second.path) == before


def test_a_build_publishes_its_version_only_under_the_corpus_lock(home, tmp_path):
    """Two builds of one version finishing together: the second waits for the first's last step, then
    finds the version published and keeps it (before, it could delete the version the first had just put
    in place, or fail renaming onto it)."""
    import threading

    from lbdata.workspace import RunLock

    run = make_run(tmp_path / "run", 8)
    lock_dir = home / "corpora" / ".locks" / "race"
    lock_dir.mkdir(parents=True)
    results = []
    with RunLock(lock_dir):  # the other build is publishing
        worker = threading.Thread(target=lambda: results.append(build_corpus([run], "race", home=home)))
        worker.start()
        worker.join(timeout=8)
        assert worker.is_alive() and list_versions("race", home) == []
    worker.join(timeout=120)
    assert results and results[0].created and [m["version"] for m in list_versions("race", home)] == [
        results[0].version
    ]
    assert "race" in list_corpora(home) and ".locks" not in list_corpora(home)


def test_versions_latest_parent_and_prefix(home, tmp_path):
    run = make_run(tmp_path / "run", 20)
    a = build_corpus([run], "ver", BuildConfig(reflection_rate=0.3), home=home)
    b = build_corpus([run], "ver", BuildConfig(reflection_rate=0.5), home=home)
    assert a.manifest["parent"] is None and b.manifest["parent"] == a.version
    assert [m["version"] for m in list_versions("ver", home)] == [a.version, b.version]
    assert resolve_version("ver", home) == b.path == resolve_version("ver@latest", home)
    assert resolve_version(f"ver@{a.version[:6]}", home) == a.path
    assert read_manifest(f"ver@{a.version}", home)["build"]["reflection_rate"] == 0.3


def test_unknown_names_and_versions_list_what_exists(home, tmp_path):
    run = make_run(tmp_path / "run", 10)
    res = build_corpus([run], "known", home=home)
    with pytest.raises(CorpusError, match="known corpora: known"):
        resolve_version("nope@latest", home)
    with pytest.raises(CorpusError, match=f"known versions: {res.version}"):
        resolve_version("known@deadbeef00", home)


def test_diff_counts_added_removed_changed(home, tmp_path):
    run = make_run(tmp_path / "run", 30, variants=("semantic_back",))
    a = build_corpus([run], "df", BuildConfig(variants=("semantic",), test_size=0.0), home=home)
    make_run(tmp_path / "run", 5, variants=("semantic_back",), start=30, verdicts=True)  # 5 new problems
    with Ledger.open(tmp_path / "run") as ledger:  # and problem 0 loses its trace
        first = next(t for t in ledger.iter_traces() if t.problem_id == "syn:0")
        ledger.put_verdict(Verdict(trace_id=first.id, accepted=False, reasons=["answer_wrong"],
                                   config_hash=ValidationConfig().config_hash))
    b = build_corpus([run], "df", BuildConfig(variants=("semantic",), test_size=0.0), home=home)
    d = diff_versions(f"df@{a.version}", f"df@{b.version}", home)
    c = d["configs"]["semantic_back"]
    assert c["added"] == 5 and c["removed"] == 1
    assert c["added"] + c["changed"] + c["unchanged"] == 34 and c["removed"] + c["changed"] + c["unchanged"] == 30
    same = diff_versions(f"df@{b.version}", f"df@{b.version}", home)["configs"]["semantic_back"]
    assert same == {"added": 0, "removed": 0, "changed": 0, "unchanged": 34}


# ---------------------------------------------------------------------------- card
def test_card_has_hub_header_and_sections(home, tmp_path):
    run = make_run(tmp_path / "run", 20)
    res = build_corpus([run], "card", BuildConfig(license="cc-by-4.0"), home=home)
    text = (res.path / "README.md").read_text()
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] == "cc-by-4.0"
    assert header["task_categories"] == ["image-text-to-text"]
    assert header["size_categories"] == ["n<1K"]
    assert "look-back" in header["tags"]
    cfgs = {c["config_name"]: c for c in header["configs"]}
    assert set(cfgs) == {"semantic_back", "solution_back"}
    assert {f["split"]: f["path"] for f in cfgs["solution_back"]["data_files"]} == {
        "train": "data/solution_back/train-*.parquet", "test": "data/solution_back/test-*.parquet"}
    for needle in ("## Summary", "## Provenance", "## Load it", "## Train on it", "lbdata train sft --corpus card@",
                   "2507.03019", "reflection rate",
                   res.version, ValidationConfig().config_hash, "synthetic"):
        assert needle in text, needle


# ---------------------------------------------------------------------------- bad input
def test_empty_run_is_one_clear_error(home, tmp_path):
    Ledger.create(tmp_path / "empty").close()
    with pytest.raises(CorpusError, match="has no completed traces"):
        build_corpus([tmp_path / "empty"], "x", home=home)


def test_nothing_accepted_is_one_clear_error(home, tmp_path):
    run = make_run(tmp_path / "run", 4, variants=("semantic_back",),
                   reject={(i, "semantic_back") for i in range(4)})
    with pytest.raises(CorpusError, match="no trace .* was accepted .*answer_wrong=4"):
        build_corpus([run], "x", home=home)
    assert not (home / "corpora" / "x").exists() or not any((home / "corpora" / "x").iterdir())


def test_runs_without_verdicts_are_validated_on_the_fly(home, tmp_path):
    run = make_run(tmp_path / "run", 12, verdicts=False)
    res = build_corpus([run], "fly", BuildConfig(test_size=0.0), home=home)
    with Ledger.open(run) as ledger:
        assert len(ledger.verdict_trace_ids(ValidationConfig().config_hash)) == 24
    assert res.manifest["traces_accepted"] == 24
    assert sum(c["rows"] for per in res.manifest["counts"].values() for c in per.values()) == 24


def test_validate_config_file_selects_its_verdicts(home, tmp_path):
    run = make_run(tmp_path / "run", 6, variants=("semantic_back",))  # verdicts stored under the default config
    cfg = tmp_path / "strict.yaml"
    cfg.write_text("min_back_words: 100\n")  # no back in these traces is that long
    with pytest.raises(CorpusError, match="back_empty"):
        build_corpus([run], "strict", validate_config=cfg, home=home)
    assert ValidationConfig.from_yaml(cfg).config_hash in Ledger.open(run).verdict_config_hashes()


# ---------------------------------------------------------------------------- CLI
def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LBDATA_DEBUG"}
    env.update({"OMP_NUM_THREADS": "1", "LBDATA_HOME": str(home)})
    return subprocess.run([sys.executable, "-m", "lbdata.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_generate_build_versions_diff_export_push(tmp_path):
    home = tmp_path / "home"
    gen = cli("generate", "--limit", "30", "--run", "syn", "--no-progress", home=home)
    assert gen.returncode == 0, gen.stderr
    first = cli("build", "syn", "--name", "demo", "--no-progress", home=home)
    assert first.returncode == 0, first.stderr
    v1 = first.stdout.split()[1].split("@")[1]
    again = cli("build", "syn", "--name", "demo", "--no-progress", home=home)
    assert f"demo@{v1} (already built; nothing written)" in again.stdout
    second = cli("build", "syn", "--name", "demo", "--reflection-rate", "0.3", "--test-size", "0.1", "--no-progress",
                 home=home)
    v2 = second.stdout.split()[1].split("@")[1]
    listing = cli("versions", "demo", home=home).stdout.splitlines()
    assert listing[1].startswith(v1) and listing[2].startswith(v2) and listing[2].endswith("(latest)")
    d = cli("diff", f"demo@{v1}", "demo@latest", home=home)
    assert d.returncode == 0 and f"demo@{v1} -> demo@{v2}" in d.stdout and "changed" in d.stdout
    for fmt in ("trl-sft", "trl-grpo", "llamafactory", "easyr1"):
        ex = cli("export", "demo@latest", "--format", fmt, "--out", str(tmp_path / fmt), home=home)
        assert ex.returncode == 0, ex.stderr
        assert (tmp_path / fmt / "lbdata_export.json").exists()
    dry = cli("push", f"demo@{v2}", "--repo", "org/demo", "--dry-run", home=home)
    assert dry.returncode == 0 and "README.md" in dry.stdout and "nothing was uploaded" in dry.stdout


def test_cli_bad_input_is_one_line_each(tmp_path):
    home = tmp_path / "home"
    one_line_error(cli("export", "nothing@abc123", "--format", "trl-sft", "--out", str(tmp_path / "o"), home=home),
                   "no corpus 'nothing'")
    run = make_run(tmp_path / "run", 6, variants=("semantic_back",))
    assert cli("build", str(run), "--name", "c", "--no-progress", home=home).returncode == 0
    one_line_error(cli("diff", "c@latest", "c@ffff0000", home=home), "version 'ffff0000' of c is unknown",
                   "known versions")
    Ledger.create(tmp_path / "empty").close()
    one_line_error(cli("build", str(tmp_path / "empty"), "--name", "e", home=home), "has no completed traces")
    bad = make_run(tmp_path / "bad", 3, variants=("semantic_back",), reject={(i, "semantic_back") for i in range(3)})
    one_line_error(cli("build", str(bad), "--name", "b", home=home), "was accepted", "answer_wrong=3")
    one_line_error(cli("build", str(run), "--name", "p", "--variant", "plain", home=home), "plain is not a corpus config")


def test_build_leaves_no_work_folder_behind(home, tmp_path):
    run = make_run(tmp_path / "run", 6)
    build_corpus([run], "tidy", home=home)
    leftovers = [p.name for p in (home / "corpora" / "tidy").iterdir() if p.name.startswith(".build-")]
    assert leftovers == []


def test_failed_build_leaves_no_home_behind(tmp_path):
    Ledger.create(tmp_path / "empty").close()
    fresh_home = tmp_path / "fresh-home"
    with pytest.raises(CorpusError):
        build_corpus([tmp_path / "empty"], "x", home=fresh_home)
    assert not fresh_home.exists()


def test_card_shows_cost_per_accepted_trace(home, tmp_path):
    run = make_run(tmp_path / "run", 10)  # 20 accepted traces
    with Ledger.open(run) as ledger:  # a billed request that failed is part of what the corpus cost
        ledger.put_failure(trace_id="t-failed", problem_id="syn:0", variant="semantic_back", mode="write", sample=0,
                           attempt=0, error="server_error: 500", cost_usd=0.03)
    res = build_corpus([run], "priced", BuildConfig(), home=home)
    text = (res.path / "README.md").read_text()
    assert "cost $0.0300 ($1.50 per 1,000 accepted traces)" in text
    assert "- Teacher cost: $0.0300 for 20 accepted traces, $1.50 per 1,000 accepted traces" in text
    free = build_corpus([make_run(tmp_path / "free", 3)], "free", BuildConfig(), home=home)
    assert "per 1,000 accepted" not in (free.path / "README.md").read_text()  # nothing paid: no cost line
