"""`lbdata view`: the static site of a run, a corpus version and a diff (builder side; see test_view_browser.py)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from lbdata.cli import app
from lbdata.errors import UsageError
from lbdata.generate import GenerateConfig, generate
from lbdata.ledger import Ledger
from lbdata.validate import ValidationConfig, parse_trace, validate_run
from lbdata.view import ViewConfig, build_corpus_view, build_diff_view, build_run_view

DEFECTS = {
    # each turns a good trace into one the validators reject for (at least) the named reason
    "back_empty": lambda t: re.sub(r"<back>.*?</back>", "<back> Checked. </back>", t, count=1, flags=re.S),
    "answer_wrong": lambda t: re.sub(r"\\boxed\{[^{}]*\}\s*$", r"\\boxed{zzz-not-it}", t),
    "back_missing": lambda t: re.sub(r"\s*</think>\s*<back>.*?</back>\s*<think>", " ", t, flags=re.S),
}


def make_run(run_dir: Path, limit: int = 12, defects: int = 9) -> Path:
    """A validated run: synthetic problems, scene-teacher traces, plus ``defects`` broken copies of them."""
    generate(GenerateConfig(limit=limit), run_dir)
    with Ledger.open(run_dir) as ledger:
        traces = list(ledger.iter_traces())
        kinds = list(DEFECTS)
        for k, trace in enumerate(traces[:defects]):
            text = DEFECTS[kinds[k % len(kinds)]](trace.text)
            assert text != trace.text
            ledger.put_trace(trace.model_copy(update={"id": f"{trace.id}-bad{k}", "text": text, "sample": 1}))
    validate_run(run_dir, progress=False)
    return run_dir


def read_js(path: Path, call: str) -> object:
    """The JSON argument of ``LB.index({...});`` or ``LB.shard(n, [...]);``."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"LB.{call}(") and text.rstrip().endswith(");")
    body = text[len(f"LB.{call}(") : text.rstrip().rindex(")")]
    if call == "shard":
        body = body.split(",", 1)[1]
    return json.loads(body)


def site_rows(site: Path) -> list[dict]:
    index = read_js(site / "data" / "index.js", "index")
    rows: list[dict] = []
    for no in range(index["shards"]):
        rows.extend(read_js(site / "data" / f"shard-{no:04d}.js", "shard"))
    return rows


def facet(index: dict, name: str) -> dict:
    return next(f for f in index["facets"] if f["name"] == name)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("view") / "run")


@pytest.fixture(scope="module")
def site(run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "s"
    build_run_view(run, out, config=ViewConfig(shard_size=7))
    return out


def test_rows_are_paged_into_shards_in_ledger_order(run, site):
    index = read_js(site / "data" / "index.js", "index")
    with Ledger.open(run) as ledger:
        traces = list(ledger.iter_traces())
    assert index["n"] == len(traces) == 12 * 2 + 9
    assert index["shards"] == -(-len(traces) // 7) == len(list((site / "data").glob("shard-*.js")))
    rows = site_rows(site)
    assert [r["n"] for r in rows] == list(range(len(traces)))
    assert [r["id"] for r in rows] == [t.id for t in traces]
    assert all(len(read_js(p, "shard")) <= 7 for p in (site / "data").glob("shard-*.js"))


def test_filter_index_matches_the_ledger_verdicts(run, site):
    index = read_js(site / "data" / "index.js", "index")
    with Ledger.open(run) as ledger:
        order = [t.id for t in ledger.iter_traces()]
        verdicts = {v.trace_id: v for v in ledger.iter_verdicts(ValidationConfig().config_hash)}
    status = facet(index, "status")
    got = Counter(status["values"][c] for c in status["codes"])
    want = Counter("accepted" if verdicts[t].accepted else "rejected" for t in order)
    assert got == want and got["rejected"] >= 9
    reason = facet(index, "reason")
    assert reason["multi"]
    for value, rows in zip(reason["values"], reason["rows"], strict=True):
        assert rows == [i for i, t in enumerate(order) if value in verdicts[t].reasons], value
    assert {"back_empty", "answer_wrong", "back_missing"} <= set(reason["values"])
    with Ledger.open(run) as ledger:
        per_variant = ledger.counts()["traces_by_variant"]
    variant = facet(index, "variant")
    assert dict(zip(variant["values"], variant["counts"], strict=True)) == per_variant


def test_segments_are_the_validators_parse(run, site):
    with Ledger.open(run) as ledger:
        texts = {t.id: t.text for t in ledger.iter_traces()}
    for row in site_rows(site):
        text = texts[row["id"]]
        assert row["text"] == text
        parsed = parse_trace(text)
        kinds = [s[0] for s in row["segments"]]
        assert [k for k in kinds if k != "answer"] == [s.kind for s in parsed.segments]
        for kind, start, end in row["segments"]:
            piece = text[start:end]
            assert piece.startswith({"think": "<think>", "back": "<back>", "answer": "\\boxed{"}[kind])
        if parsed.answer is not None:
            assert kinds[-1] == "answer" and row["answer"] == parsed.answer
    back_empty = [r for r in site_rows(site) if "back_empty" in r.get("reasons", [])]
    assert back_empty and all("Checked." in r["text"] for r in back_empty)


def test_answer_wrong_rows_show_no_match(site):
    rows = site_rows(site)
    wrong = [r for r in rows if "answer_wrong" in r["reasons"]]
    assert wrong and all(r["match"] is False and r["answer"] == "zzz-not-it" for r in wrong)
    assert all(r["match"] is True for r in rows if r["status"] == "accepted")


def test_images_copied_once_with_small_thumbnails(run, site):
    with Ledger.open(run) as ledger:
        shas = {ref.sha256 for p in ledger.iter_problems() for ref in p.images}
    assert {p.name.split(".")[0] for p in (site / "images").iterdir()} == shas
    thumbs = sorted((site / "thumbs").iterdir())
    assert {p.stem for p in thumbs} == shas
    for p in thumbs:
        with Image.open(p) as im:
            assert im.format == {".png": "PNG", ".jpg": "JPEG"}[p.suffix] and max(im.size) <= ViewConfig().thumb_px
    for row in site_rows(site):
        for sha, ext, w, h, thumb in row["images"]:
            assert (site / "images" / f"{sha}.{ext}").exists() and w > 0 and h > 0
            assert (site / "thumbs" / thumb).exists() and thumb.startswith(sha)


def test_thumbnail_format_follows_the_picture(tmp_path):
    """Few colours (a chart) -> palette PNG; a photo-like image -> JPEG; both fit the box."""
    import random

    from lbdata.view.site import make_thumbnail

    chart = tmp_path / "chart.png"
    Image.new("RGB", (800, 600), "white").save(chart)
    rng = random.Random(0)
    photo = tmp_path / "photo.png"
    Image.frombytes("RGB", (640, 480), bytes(rng.randrange(256) for _ in range(640 * 480 * 3))).save(photo)
    assert make_thumbnail(chart, tmp_path, "a" * 64, 100) == "a" * 64 + ".png"
    assert make_thumbnail(photo, tmp_path, "b" * 64, 100) == "b" * 64 + ".jpg"
    with Image.open(tmp_path / ("a" * 64 + ".png")) as im:
        assert im.size == (100, 75) and im.mode == "P"


def test_overview_has_counts_reason_links_and_plots(run, site):
    html = (site / "index.html").read_text()
    with Ledger.open(run) as ledger:
        n = ledger.counts()["traces"]
    assert f"<div class=\"num\">{n:,}</div><div class=\"lbl\">traces</div>" in html
    assert 'href="samples.html#reason=back_empty"' in html
    for name in ("reasons", "back_position", "lengths", "reflection", "answer_match"):
        png = site / "plots" / f"{name}.png"
        assert f'src="plots/{name}.png"' in html
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] >= 600


def test_site_is_self_contained(site):
    """No CDN, no external script or stylesheet, nothing fetched: data files are <script> JSONP."""
    for path in site.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text(encoding="utf-8")
            if path.parent.name != "data":
                assert not re.search(r"https?://", text), path
            assert "fetch(" not in text and "XMLHttpRequest" not in text, path
    samples = (site / "samples.html").read_text()
    assert '<script src="assets/view.js"' in samples and '<script src="data/index.js"' in samples


def test_rebuild_is_identical_reuses_thumbnails_and_drops_stale_shards(run, tmp_path):
    out = tmp_path / "site"
    first = build_run_view(run, out, config=ViewConfig(shard_size=4))
    snapshot = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = build_run_view(run, out, config=ViewConfig(shard_size=4))
    assert again.thumbnails_made == 0 and first.thumbnails_made == again.images
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot
    fewer = build_run_view(run, out, config=ViewConfig(shard_size=1000))
    assert fewer.shards == 1 and sorted(p.name for p in (out / "data").iterdir()) == ["index.js", "shard-0000.js"]


def test_unvalidated_run_is_shown_with_a_hint(tmp_path):
    run = tmp_path / "run"
    generate(GenerateConfig(limit=3), run)
    summary = build_run_view(run, tmp_path / "site")
    assert summary.counts["unvalidated"] == 6 and summary.counts["accepted"] == 0
    index = read_js(tmp_path / "site" / "data" / "index.js", "index")
    assert facet(index, "status")["values"] == ["unvalidated"]
    assert "have no verdict under the current validator settings" in (tmp_path / "site" / "index.html").read_text()


def test_missing_image_is_counted_not_fatal(tmp_path):
    run = tmp_path / "run"
    generate(GenerateConfig(limit=2), run)
    victim = next((run / "images").iterdir())
    victim.unlink()
    summary = build_run_view(run, tmp_path / "site")
    assert summary.missing_images == 1 and summary.rows == 4
    missing = [img for r in site_rows(tmp_path / "site") for img in r["images"] if img[0] == victim.stem]
    assert len(missing) == 2 and all(img[4] is None for img in missing)
    assert "1 images could not be read" in (tmp_path / "site" / "index.html").read_text()


def test_refuses_to_write_into_a_foreign_folder(run, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not empty"):
        build_run_view(run, tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


# ---------------------------------------------------------------------------- corpora and diff
def make_corpora(home: Path) -> tuple[Path, str, str]:
    """Two versions of corpus ``demo``: A from 10 problems, B from 14 with another seed (rows added and removed)."""
    from lbdata.corpus import BuildConfig, build_corpus

    make_run(home / "runs" / "r", limit=10, defects=0)
    a = build_corpus(["r"], "demo", home=home)
    generate(GenerateConfig(limit=14), home / "runs" / "r")
    validate_run(home / "runs" / "r", progress=False)
    b = build_corpus(["r"], "demo", BuildConfig(seed=1), home=home)
    return home, f"demo@{a.version}", f"demo@{b.version}"


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, str, str]:
    return make_corpora(tmp_path_factory.mktemp("home"))


def _parquet_ids(home: Path, spec: str) -> set[str]:
    import pyarrow.parquet as pq

    from lbdata.corpus import resolve_version

    return {i for f in (resolve_version(spec, home) / "data").rglob("*.parquet") for i in pq.read_table(f, columns=["id"])
            .column("id").to_pylist()}


def test_corpus_site_shows_every_row_with_its_split(corpora, tmp_path):
    home, spec_a, _ = corpora
    summary = build_corpus_view(spec_a, tmp_path / "c", home=home, config=ViewConfig(shard_size=16))
    rows = site_rows(tmp_path / "c")
    assert {r["id"] for r in rows} == _parquet_ids(home, spec_a) and summary.rows == len(rows)
    index = read_js(tmp_path / "c" / "data" / "index.js", "index")
    assert set(facet(index, "split")["values"]) <= {"train", "test"}
    assert set(facet(index, "config")["values"]) == {"semantic_back", "solution_back"}
    plain = [r for r in rows if r["variant"] == "plain"]
    assert plain and all(not any(s[0] == "back" for s in r["segments"]) for r in plain)
    assert all(r["images"] and (tmp_path / "c" / "thumbs" / r["images"][0][4]).exists() for r in rows)
    assert "reflection rate" in (tmp_path / "c" / "index.html").read_text()


def test_diff_site_has_the_rows_and_counts_of_lbdata_diff(corpora, tmp_path):
    """One meaning of diff: the site's rows and counts are those of corpus.diff_versions (config + problem)."""
    from lbdata.corpus import diff_versions

    home, spec_a, spec_b = corpora
    d = diff_versions(spec_a, spec_b, home)
    summary = build_diff_view(spec_a, spec_b, tmp_path / "d", home=home)
    c = summary.counts
    for change in ("added", "removed", "changed", "unchanged"):
        assert c[change] == sum(per[change] for per in d["configs"].values()), change
    assert c["added"] and c["changed"] and c["unchanged"]
    assert c["rows_b"] == c["added"] + c["changed"] + c["unchanged"]
    assert c["rows_a"] == c["removed"] + c["changed"] + c["unchanged"]
    rows = site_rows(tmp_path / "d")
    for change in ("added", "removed", "changed"):
        assert {r["id"] for r in rows if r["change"] == change} == {r["id"] for r in d["rows"][change]}, change
    assert _parquet_ids(home, spec_a).isdisjoint({r["id"] for r in d["rows"]["added"]})
    html = (tmp_path / "d" / "index.html").read_text()
    assert f"Added rows ({c['added']:,})" in html and f"Changed rows ({c['changed']:,})" in html


def test_cli_diff_and_view_diff_print_the_same_counts(corpora, tmp_path):
    import re

    home, spec_a, spec_b = corpora
    runner = CliRunner()
    diff = runner.invoke(app, ["diff", spec_a, spec_b, "--home", str(home)])
    view = runner.invoke(app, ["view", spec_a, "--diff", spec_b, "--home", str(home), "--out", str(tmp_path / "v"),
                               "--no-progress"])
    assert diff.exit_code == 0 and view.exit_code == 0, (diff.output, view.output)
    per_config = [tuple(map(int, m)) for m in re.findall(r"\+(\d+) added\s+-(\d+) removed\s+~(\d+) changed\s+(\d+) "
                                                         r"unchanged", diff.output)]
    total = tuple(sum(col) for col in zip(*per_config, strict=True))
    shown = re.search(r"\+(\d+) added\s+-(\d+) removed\s+~(\d+) changed\s+(\d+) unchanged", view.output)
    assert len(per_config) == 2 and shown and tuple(map(int, shown.groups())) == total


# ---------------------------------------------------------------------------- CLI
def test_cli_view_run_and_diff(run, corpora, tmp_path, monkeypatch):
    import webbrowser

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    runner = CliRunner()
    res = runner.invoke(app, ["view", str(run), "--out", str(tmp_path / "s"), "--no-progress", "--open"])
    assert res.exit_code == 0, res.output
    assert opened == [(tmp_path / "s" / "index.html").resolve().as_uri()]
    assert f"site       {tmp_path / 's' / 'index.html'}" in res.output and "traces     33" in res.output
    home, spec_a, spec_b = corpora
    res = runner.invoke(app, ["view", spec_a, "--diff", spec_b, "--home", str(home), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert (home / "views" / f"{spec_a}..{spec_b}" / "index.html").exists() and "added" in res.output
    res = runner.invoke(app, ["view", str(run), "--diff", spec_b, "--home", str(home)])
    assert res.exit_code != 0 and "--diff compares two corpus versions" in str(res.exception)


# ---------------------------------------------------------------------------- hostile text
HOSTILE = "<script>window.__pwned = 1</script> \"double\" 'single' </textarea><img src=x onerror=\"window.__pwned = 2\">"


def make_hostile_run(run_dir: Path) -> Path:
    """A validated run whose name, question, trace, failed request and bad source row all carry markup."""
    from lbdata.records import BadRow

    make_run(run_dir, limit=2, defects=0)
    with Ledger.open(run_dir) as ledger:
        problem = next(ledger.iter_problems())
        trace = next(ledger.iter_traces(problem_id=problem.id))
        evil = problem.model_copy(update={"id": "synthetic:evil", "question": f"What is {HOSTILE}?"})
        ledger.put_problem(evil, [ledger.image_bytes(r.filename) for r in evil.images])
        text = trace.text.replace("<back> ", f"<back> {HOSTILE} ", 1)
        ledger.put_trace(trace.model_copy(update={"id": "evil-trace", "problem_id": evil.id, "text": text}))
        ledger.put_failure(trace_id="evil-failed", problem_id=evil.id, variant="plain", mode="write", sample=0,
                           attempt=1, error=HOSTILE)
        ledger.put_bad_row(BadRow(source="jsonl", key="7", reason="missing_answer", detail=HOSTILE))
    validate_run(run_dir, progress=False)
    return run_dir


def add_judgments(run_dir: Path, claim: str = HOSTILE) -> tuple[str, str]:
    """Judge ``j1`` on every back trace of a run: ``claim`` refuted and one supported claim, except one trace
    left unjudged. Returns (a judged trace id, the unjudged trace id)."""
    from lbdata.hashing import sha256_text

    with Ledger.create(run_dir) as ledger:  # adds the judgment tables
        ledger.put_judge("j1", "h1", {"model": "m"})
        backs = [t for t in ledger.iter_traces() if t.variant != "plain" and "<back>" in t.text]
        for trace in backs[1:]:
            record = {"trace_id": trace.id, "claims": [{"claim": "bar A is 7", "supported": True},
                                                       {"claim": claim, "supported": False},
                                                       {"claim": "the colour", "supported": None}]}
            ledger.put_judgment(trace.id, "h1", sha256_text(trace.text), "judged", record)
    return backs[1].id, backs[0].id


def page_text(html: str) -> tuple[str, list[str]]:
    """The text a browser shows for ``html`` and the tags it would create, as a parser reads them."""
    from html.parser import HTMLParser

    class Reader(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.text: list[str] = []
            self.tags: list[str] = []

        def handle_starttag(self, tag, attrs) -> None:
            self.tags.append(tag)

        def handle_data(self, data) -> None:
            self.text.append(data)

    reader = Reader()
    reader.feed(html)
    return "".join(reader.text), reader.tags


def test_hostile_text_in_a_run_is_shown_as_text(tmp_path):
    run = make_hostile_run(tmp_path / "r<i>\"'")
    build_run_view(run, tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    text, tags = page_text(html)
    assert "<script>window" not in html and "<img src=x" not in html and "</textarea><img" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html and "&#34;double&#34; &#39;single&#39;" in html
    assert text.count(HOSTILE) == 2, "the failed request's error and the bad row's detail, verbatim"
    assert "Run r<i>\"'" in text
    assert tags.count("script") == 0 and "img" in tags and "textarea" not in tags and "i" not in tags
    samples = (tmp_path / "site" / "samples.html").read_text()
    assert page_text(samples)[1].count("script") == 2, "only view.js and the data index"
    assert "<title>lbdata · Run r&lt;i&gt;&#34;&#39; · samples</title>" in samples


def test_every_overview_page_escapes_what_it_shows():
    from lbdata.view import pages
    from lbdata.view.plots import Plot, Stats

    plots = [Plot("plots/a.png", HOSTILE, HOSTILE)]
    manifest = {"name": HOSTILE, "version": "v1", "models": [HOSTILE], "rejects": {HOSTILE: 2},
                "counts": {HOSTILE: {"train": {"rows": 3}}}}
    corpus = pages.corpus_overview(spec=HOSTILE, where=HOSTILE, manifest=manifest, stats=Stats(), plots=plots,
                                   missing_images=0)
    summary = {"rows_a": 1, "rows_b": 2, "added": 1, "removed": 0, "changed": 0, "unchanged": 1,
               "per_part": {(HOSTILE, "train"): {"added": 1, "removed": 0, "changed": 0, "unchanged": 1}}}
    row = {"n": 0, "id": HOSTILE, "config": HOSTILE, "split": "train", "variant": "plain", "question": HOSTILE[:90]}
    diff = pages.diff_overview(spec_a=HOSTILE, spec_b="b", where="", summary=summary,
                               listed={"added": [row], "removed": [], "changed": []})
    for html in (corpus, diff):
        text, tags = page_text(html)
        assert "script" not in tags and "textarea" not in tags and tags.count("img") == (1 if html is corpus else 0)
        assert HOSTILE in text and "<script>" not in html
    assert f'alt="{HOSTILE}"' not in corpus and 'alt="&lt;script&gt;' in corpus
    assert HOSTILE[:90] in page_text(diff)[0]


def test_judgments_are_shown_per_trace_and_claims_stay_text(tmp_path):
    """Each back trace carries every judge's claims (supported true/false/null) or "unjudged"; plain traces
    none; the overview lists the judge and the refuted claims, escaped."""
    run = make_run(tmp_path / "run", limit=3, defects=0)
    judged_id, unjudged_id = add_judgments(run)
    build_run_view(run, tmp_path / "site")
    rows = {r["id"]: r for r in site_rows(tmp_path / "site")}
    assert rows[judged_id]["judgments"] == [{"judge": "j1", "status": "judged", "claims": [
        ["bar A is 7", True], [HOSTILE, False], ["the colour", None]]}]
    assert rows[unjudged_id]["judgments"] == [{"judge": "j1", "status": "unjudged", "claims": []}]
    assert all("judgments" not in r for r in rows.values() if r["variant"] == "plain")
    html = (tmp_path / "site" / "index.html").read_text()
    text, tags = page_text(html)
    assert "<script>window" not in html and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert tags.count("script") == 0 and "Refuted claims" in text and text.count(HOSTILE) == sum("judgments" in r for r in rows.values()) - 1
    n = rows[judged_id]["n"]
    assert f'href="samples.html#row={n}"' in html
    plain = make_run(tmp_path / "plain", limit=3, defects=0)  # a run without judges: rows as before
    build_run_view(plain, tmp_path / "plain-site")
    assert all("judgments" not in r for r in site_rows(tmp_path / "plain-site"))
    assert "Judges" not in (tmp_path / "plain-site" / "index.html").read_text()
