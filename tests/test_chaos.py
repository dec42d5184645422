"""Nothing lost under faults: hostile sources, a second writer, and SIGKILL at random points.

The fast tests (a table of hostile source rows, two writers on one run, a verdict on changed text)
run by default. The kill tests are marked ``slow``: each runs a real ``lbdata`` command in a
subprocess, kills it with SIGKILL at a random moment a few times, re-runs it to the end and checks
the invariants README.md lists under "What lbdata guarantees". The kill times come from
``LBDATA_CHAOS_SEED`` (default 0), printed on failure so a run can be repeated.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from lbdata.corpus import BuildConfig, build_corpus, load_corpus
from lbdata.errors import LedgerError, UsageError
from lbdata.images import ImageRejected, accept_image
from lbdata.ledger import Ledger
from lbdata.records import BadRow
from lbdata.sources import load_source
from lbdata.sources.base import SourceRow
from lbdata.validate import ValidationConfig, validate_run
from lbdata.workspace import LOCK_FILE, RunBusy, RunLock
from tests.conftest import png_bytes

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("LBDATA_CHAOS_SEED", "0"))


# ---------------------------------------------------------------------------- hostile images and rows
def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid one-bit PNG of ``width`` x ``height`` zeros: about 100 KB on disk, 900 M pixels decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def encoded(fmt: str, mode: str = "RGB", size: tuple[int, int] = (20, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, "red" if mode == "RGB" else 128).save(buf, format=fmt)
    return buf.getvalue()


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    """A dataset folder with one good image and many hostile neighbours, plus a secret outside it."""
    base = tmp_path_factory.mktemp("hostile")
    folder, outside = base / "data", base / "outside"
    (folder / "img").mkdir(parents=True)
    outside.mkdir()
    (folder / "img" / "good.png").write_bytes(png_bytes("green"))
    (folder / "img" / "bomb.png").write_bytes(bomb_png())
    (folder / "img" / "scan.tiff").write_bytes(encoded("TIFF"))
    (folder / "img" / "photo.ppm").write_bytes(encoded("PPM"))
    (folder / "img" / "figure.eps").write_bytes(EPS)
    (folder / "img" / "paper.pdf").write_bytes(PDF)
    (folder / "img" / "fake.png").write_bytes(EPS)  # PostScript under a .png name
    (folder / "img" / "cut.png").write_bytes(png_bytes("blue", (64, 64))[:-40])
    os.mkfifo(folder / "img" / "pipe.png")
    (outside / "secret.png").write_bytes(png_bytes("black"))
    (folder / "img" / "link.png").symlink_to(outside / "secret.png")
    (folder / "img" / "dev.png").symlink_to("/dev/zero")
    return {"folder": folder, "outside": outside}


# (row fields over a good row, expected reason or None for a good row, check on the good row)
HOSTILE_ROWS = [
    ("decompression bomb", {"images": ["img/bomb.png"]}, "image_too_large"),
    ("/dev/zero by absolute path", {"images": ["/dev/zero"]}, "image_outside_root"),
    ("/dev/zero through a symlink", {"images": ["img/dev.png"]}, "image_outside_root"),
    ("a FIFO", {"images": ["img/pipe.png"]}, "not_a_regular_file"),
    ("../ out of the folder", {"images": ["../outside/secret.png"]}, "image_outside_root"),
    ("a symlink out of the folder", {"images": ["img/link.png"]}, "image_outside_root"),
    ("an absolute path out of the folder", {"images": ["OUTSIDE/secret.png"]}, "image_outside_root"),
    ("EPS", {"images": ["img/figure.eps"]}, "unsupported_image_format"),
    ("PDF", {"images": ["img/paper.pdf"]}, "unsupported_image_format"),
    ("PostScript named .png", {"images": ["img/fake.png"]}, "unsupported_image_format"),
    ("a truncated PNG", {"images": ["img/cut.png"]}, "unreadable_image"),
    ("a folder", {"images": ["img"]}, "not_a_regular_file"),
    ("a missing file", {"images": ["img/nope.png"]}, "image_not_found"),
    ("question is a list", {"problem": ["a", "b"]}, "bad_type"),
    ("answer is false", {"answer": False}, "bad_type"),
    ("answer is NaN", {"answer": float("nan")}, "bad_type"),
    ("answer is a list", {"answer": ["1", "2"]}, "bad_type"),
    ("answer is a number", {"answer": 7}, None),
    ("TIFF is converted to PNG", {"images": ["img/scan.tiff"]}, None),
    ("PPM is converted to PNG", {"images": ["img/photo.ppm"]}, None),
    ("an absolute path inside the folder", {"images": ["FOLDER/img/good.png"]}, None),
    ("image bytes given as a number too big for memory", {"images": [{"bytes": 2**40}]}, "unreadable_image"),
    ("image bytes given as a number too big for an index", {"images": [{"bytes": 10**20}]}, "unreadable_image"),
    ("image path given as a number", {"images": [7]}, "unreadable_image"),
    ("image dict path given as a dict", {"images": [{"path": {"path": "img/good.png"}}]}, "unreadable_image"),
    ("image path with a NUL byte", {"images": ["img/good.png\x00.txt"]}, "unreadable_image"),
    ("image path longer than the system allows", {"images": ["img/" + "a" * 5000 + ".png"]}, "unreadable_image"),
]


def _rows(source) -> tuple[list[SourceRow], list[BadRow]]:
    rows = list(source)
    return [r for r in rows if isinstance(r, SourceRow)], [r for r in rows if isinstance(r, BadRow)]


def _write_jsonl(path: Path, rows: list[dict], hostile: dict[str, Path]) -> None:
    def fix(v):
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, str):
            return v.replace("OUTSIDE", str(hostile["outside"])).replace("FOLDER", str(hostile["folder"]))
        return v

    path.write_text("".join(json.dumps({k: fix(v) for k, v in r.items()}) + "\n" for r in rows))


@pytest.mark.parametrize(("case", "fields", "reason"), HOSTILE_ROWS, ids=[c for c, _, _ in HOSTILE_ROWS])
def test_hostile_row_becomes_a_bad_row_and_the_run_goes_on(hostile, case, fields, reason):
    good = {"id": "ok", "images": ["img/good.png"], "problem": "Colour?", "answer": "green"}
    rows = [{**good, "id": "before"}, {**good, **fields, "id": "x"}, {**good, "id": "after"}]
    path = hostile["folder"] / f"{abs(hash(case))}.jsonl"
    _write_jsonl(path, rows, hostile)
    t0 = time.monotonic()
    ok, bad = _rows(load_source(f"jsonl:{path}"))
    assert time.monotonic() - t0 < 20, "a hostile row must not hang the source"
    ids = [r.problem.id.split(":")[1] for r in ok]
    if reason is None:
        assert ids == ["before", "x", "after"] and not bad
        row = ok[1]
        ref = row.problem.images[0]
        with Image.open(io.BytesIO(row.images[0])) as im:  # the bytes are what the ext says they are
            assert {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "gif": "GIF"}[ref.ext] == im.format
    else:
        assert ids == ["before", "after"]
        assert [(b.key, b.reason) for b in bad] == [("x", reason)], bad
        if reason == "image_outside_root":
            assert "--image-root" in bad[0].detail


def test_image_root_allows_a_folder_the_user_names(hostile):
    path = hostile["folder"] / "rooted.jsonl"
    _write_jsonl(path, [{"id": "s", "images": ["../outside/secret.png"], "problem": "Colour?", "answer": "black"},
                        {"id": "l", "images": ["img/link.png"], "problem": "Colour?", "answer": "black"}], hostile)
    ok, bad = _rows(load_source(f"jsonl:{path}", image_roots=[hostile["outside"]]))
    assert [r.problem.id for r in ok] == ["rooted:s", "rooted:l"] and not bad


def test_pixel_and_byte_limits_are_checked_before_decoding(hostile, monkeypatch):
    bomb, small, square = (hostile["folder"] / "img" / "bomb.png").read_bytes(), png_bytes(), png_bytes("red", (100, 100))
    calls = []
    monkeypatch.setattr(Image.Image, "load", lambda self: calls.append(self.size) or None)
    with pytest.raises(ImageRejected) as exc:
        accept_image(bomb)
    assert exc.value.reason == "image_too_large" and "--max-image-pixels" in str(exc.value)
    with pytest.raises(ImageRejected, match="bytes") as exc:
        accept_image(small, max_bytes=10)
    assert exc.value.reason == "image_too_large"
    with pytest.raises(ImageRejected, match="10,000 pixels"):
        accept_image(square, max_pixels=99 * 100)
    assert not calls  # nothing was decoded
    monkeypatch.undo()
    path = hostile["folder"] / "limits.jsonl"
    _write_jsonl(path, [{"id": "big", "images": ["img/good.png"], "problem": "Colour?", "answer": "green"}], hostile)
    ok, bad = _rows(load_source(f"jsonl:{path}", max_image_pixels=100))
    assert not ok and bad[0].reason == "image_too_large"


def test_an_icon_is_refused_before_anything_is_decoded(monkeypatch):
    """Pillow decodes an ICO while opening it, at the size of the PNG inside, not the size its header
    declares: a 16x16 icon holding a 12000x12000 PNG was decoded (144 M pixels) before any limit."""
    png = bomb_png(12000, 12000)
    ico = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 22) + png
    calls = []
    monkeypatch.setattr(Image.core, "new", lambda *a: calls.append(a) or pytest.fail("decoded"))
    with pytest.raises(ImageRejected) as exc:
        accept_image(ico)
    assert exc.value.reason == "unsupported_image_format" and not calls


def test_bad_bytes_bom_and_line_numbers(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes())
    good = json.dumps({"id": "1", "image": "a.png", "question": "Q?", "answer": "1"}).encode()
    lines = [b"\xef\xbb\xbf" + good, good.replace(b'"1"', b'"2"'), b'{"id": "3", "question": "caf\xe9"}',
             good.replace(b'"1"', b'"4"')]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    ok, bad = _rows(load_source(f"jsonl:{path}"))
    assert [r.problem.id for r in ok] == ["mixed:1", "mixed:2", "mixed:4"]
    assert [(b.key, b.reason) for b in bad] == [("line3", "bad_encoding")]
    assert "line 3" in bad[0].detail and "0xe9" in bad[0].detail


def test_a_line_longer_than_the_limit_is_a_bad_row_read_in_bounded_memory(tmp_path, monkeypatch):
    """A file without newlines (a binary named .jsonl, a sparse file) was read whole as one line."""
    from lbdata.sources import files

    monkeypatch.setattr(files, "MAX_LINE_BYTES", 1 << 20)
    (tmp_path / "a.png").write_bytes(png_bytes())
    good = json.dumps({"id": "1", "image": "a.png", "question": "Q?", "answer": "1"}).encode()
    path = tmp_path / "long.jsonl"
    path.write_bytes(good + b"\n" + b'{"id": "2", "q": "' + b"x" * (3 << 20) + b'"}\n' + good.replace(b'"1"', b'"3"'))
    reads = []
    real_readline = files._read_line
    monkeypatch.setattr(files, "_read_line", lambda fh, n: reads.append(n) or real_readline(fh, n))
    ok, bad = _rows(load_source(f"jsonl:{path}"))
    assert [r.problem.id for r in ok] == ["long:1", "long:3"]
    assert [(b.key, b.reason) for b in bad] == [("line2", "line_too_long")] and "line 2" in bad[0].detail
    assert reads and max(reads) <= (1 << 20) + 1


def test_lone_surrogate_is_a_bad_row_not_a_crash(tmp_path):
    """``"\\ud800"`` is valid JSON but not text: it used to pass the source and crash generate at storing."""
    (tmp_path / "a.png").write_bytes(png_bytes())
    rows = [{"id": "1", "image": "a.png", "question": "Q?", "answer": "1"},
            {"id": "2", "image": "a.png", "question": "Q \ud800?", "answer": "2"},
            {"id": "3", "image": "a.png", "question": "Smile \U0001f600?", "answer": "3"}]  # a pair is fine
    path = tmp_path / "sur.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ok, bad = _rows(load_source(f"jsonl:{path}"))
    assert [r.problem.id for r in ok] == ["sur:1", "sur:3"]
    assert [(b.key, b.reason) for b in bad] == [("line2", "bad_encoding")] and "line 2" in bad[0].detail
    for row in ok:
        row.problem.model_dump_json()  # storable


def test_text_that_is_not_utf8_in_a_parquet_file_or_saved_dataset_is_a_bad_row(tmp_path):
    """Parquet keeps whatever bytes a writer put in a string column; reading one that is not UTF-8 raised
    UnicodeDecodeError out of the whole batch and stopped the run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = pa.array(["Q1?", "caf\u00e9?", "Q3?"], type=pa.string())
    offsets, data = good.buffers()[1], bytearray(good.buffers()[2].to_pybytes())
    data[data.find(b"\xc3")] = 0xFF
    question = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(bytes(data))])
    image = png_bytes()
    table = pa.table({"id": ["1", "2", "3"], "question": question, "answer": ["1", "2", "3"],
                      "image": [image, image, image]})
    pq.write_table(table, tmp_path / "t.parquet")
    ok, bad = _rows(load_source(f"parquet:{tmp_path / 't.parquet'}"))
    assert [r.problem.id for r in ok] == ["t:1", "t:3"]
    assert [(b.key, b.reason) for b in bad] == [("1", "bad_encoding")] and "row 1" in bad[0].detail
    import datasets

    datasets.Dataset(table).save_to_disk(tmp_path / "saved")  # a saved dataset keeps the bytes too
    ok, bad = _rows(load_source(str(tmp_path / "saved")))
    assert [r.problem.id for r in ok] == ["saved:1", "saved:3"]
    assert [(b.key, b.reason) for b in bad] == [("1", "bad_encoding")]


def test_bomb_in_a_saved_dataset_is_a_bad_row(tmp_path):
    import datasets

    feats = datasets.Features({"image": datasets.Image(), "question": datasets.Value("string"),
                               "answer": datasets.Value("string")})
    ds = datasets.Dataset.from_dict({"image": [{"bytes": png_bytes(), "path": None},
                                               {"bytes": bomb_png(20000, 20000), "path": None},
                                               {"bytes": encoded("TIFF"), "path": None}],
                                     "question": ["a?", "b?", "c?"], "answer": ["1", "2", "3"]}, features=feats)
    ds.save_to_disk(tmp_path / "saved")
    ok, bad = _rows(load_source(str(tmp_path / "saved")))
    assert [r.problem.id for r in ok] == ["saved:0", "saved:2"] and ok[1].problem.images[0].ext == "png"
    assert [(b.key, b.reason) for b in bad] == [("1", "image_too_large")]


# ---------------------------------------------------------------------------- one writer per run
def _holder(run_dir: Path, seconds: float) -> subprocess.Popen:
    code = (f"import sys, time; from lbdata.workspace import RunLock; lock = RunLock({str(run_dir)!r}); "
            f"print('held', flush=True); time.sleep({seconds})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def lbdata(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lbdata.cli", *args, "--home", str(home)], capture_output=True,
                          text=True, timeout=timeout, env=_env(), cwd=ROOT)


def test_second_generate_names_the_holder_then_takes_over_a_killed_one(tmp_path):
    home = tmp_path / "home"
    run_dir = home / "runs" / "r"
    run_dir.mkdir(parents=True)
    holder = _holder(run_dir, 120)
    try:
        proc = lbdata("generate", "--limit", "2", "--run", "r", "--no-progress", home=home)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"process {holder.pid} on " in lines[0] and "--wait" in lines[0]
        assert not (run_dir / "ledger.sqlite").exists() or Ledger.open(run_dir).counts()["traces"] == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    proc = lbdata("generate", "--limit", "2", "--run", "r", "--no-progress", home=home)  # the stale lock is taken over
    assert proc.returncode == 0, proc.stderr
    with Ledger.open(run_dir) as ledger:
        assert ledger.counts()["traces"] == 4
    assert (run_dir / LOCK_FILE).read_text() == ""  # released on exit


def test_generate_wait_queues_behind_the_holder(tmp_path):
    home = tmp_path / "home"
    run_dir = home / "runs" / "r"
    run_dir.mkdir(parents=True)
    holder = _holder(run_dir, 120)
    proc = subprocess.Popen([sys.executable, "-m", "lbdata.cli", "generate", "--limit", "2", "--run", "r",
                             "--no-progress", "--wait", "--home", str(home)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        line = proc.stderr.readline()  # blocks until it says it waits (or exits)
        assert f"waiting for process {holder.pid} on " in line, line
        assert proc.poll() is None and not (run_dir / "config.json").exists()  # nothing written while it waits
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    with Ledger.open(run_dir) as ledger:
        assert ledger.counts()["traces"] == 4


def test_lock_in_process(tmp_path):
    with RunLock(tmp_path) as lock:
        assert lock.holder()["pid"] == os.getpid()
        with pytest.raises(RunBusy, match=f"process {os.getpid()} on .* since "):
            RunLock(tmp_path)
    with RunLock(tmp_path):
        pass
    assert issubclass(RunBusy, UsageError)


def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_kept(tmp_path):
    """A run folder copied from elsewhere may hold ``writer.lock`` as a link: the lock used to follow it
    and empty the file it pointed to."""
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).symlink_to(target)
    with pytest.raises(LedgerError, match=LOCK_FILE):
        RunLock(run)
    assert target.read_text() == "keep me\n"


# ---------------------------------------------------------------------------- a verdict names its text
def _scene_run(home: Path, name: str = "r", limit: int = 20) -> Path:
    proc = lbdata("generate", "--limit", str(limit), "--run", name, "--no-progress", home=home)
    assert proc.returncode == 0, proc.stderr
    return home / "runs" / name


def _tamper(run_dir: Path, trace_id: str, text: str) -> None:
    """Change a stored trace's text behind the ledger's back (what an overwriting writer once did)."""
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    row = json.loads(con.execute("SELECT json FROM traces WHERE id=?", (trace_id,)).fetchone()[0])
    row["text"] = text
    con.execute("UPDATE traces SET json=? WHERE id=?", (json.dumps(row), trace_id))
    con.commit()
    con.close()


def test_put_trace_never_replaces_and_build_rejudges_changed_text(tmp_path, home):
    run = _scene_run(home)
    validate_run(run, progress=False)
    chash = ValidationConfig().config_hash
    with Ledger.open(run) as ledger:
        accepted = [t for t in ledger.iter_traces() if ledger.get_verdict(t.id, chash).accepted]
        first, second = accepted[0], accepted[1]
        assert ledger.get_verdict(first.id, chash).text_sha256
        bad = "<think> ok </think> <back> x </back> <think> so </think> \\boxed{-1}"
        assert ledger.put_trace(first.model_copy(update={"text": bad})) is False
        assert ledger.get_trace(first.id).text == first.text
    _tamper(run, second.id, bad)
    with Ledger.open(run) as ledger:
        assert ledger.stale_verdicts(chash) == 1 and second.id not in ledger.verdict_trace_ids(chash)
    res = build_corpus([run], "c", BuildConfig(test_size=0.0, reflection_rate=1.0), home=home)
    texts = {t for cfg in res.manifest["configs"] for t in load_corpus("c", config=cfg, split="train", home=home)["trace"]}
    assert bad not in texts and first.text in texts or first.variant not in ("semantic_back", "solution_back")
    with Ledger.open(run) as ledger:  # judged again, on the text stored now
        verdict = ledger.get_verdict(second.id, chash)
        assert not verdict.accepted and ledger.stale_verdicts(chash) == 0


# ---------------------------------------------------------------------------- SIGKILL at random points
def _run_and_kill(args: list[str], home: Path, rng: random.Random, *, kills: int, ready=None,
                  delay: tuple[float, float] = (0.0, 0.3), after_kill=None) -> int:
    """Start ``lbdata ARGS`` ``kills`` times; once ``ready(rng)`` says the work is under way (a fresh target is
    drawn per start), wait a random ``delay`` and SIGKILL it. Returns how many starts were killed."""
    killed = 0
    for _ in range(kills):
        is_ready = ready(rng) if ready is not None else (lambda: True)
        proc = subprocess.Popen([sys.executable, "-m", "lbdata.cli", *args, "--home", str(home)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), cwd=ROOT)
        deadline = time.monotonic() + 120
        while proc.poll() is None and not is_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(*delay))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        if after_kill is not None:
            after_kill()
    return killed


def _count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        con.close()


def _progress_target(count, total: int):
    """A ``ready`` for ``_run_and_kill``: true once ``count()`` passes a random target between now and ``total``."""

    def ready(rng: random.Random):
        now = count()
        target = rng.randint(now + 1, total - 1) if now + 1 < total else total
        return lambda: count() >= target

    return ready


def _done_texts(run_dir: Path) -> dict[str, str]:
    if not (run_dir / "ledger.sqlite").exists():
        return {}
    with Ledger.open(run_dir) as ledger:
        return {t.id: t.text for t in ledger.iter_traces()}


@pytest.mark.slow
def test_chaos_generate_loses_no_answer_and_pays_none_twice(tmp_path):
    from tests.fake_openai_server import write_problems

    rng = random.Random(SEED)
    home, log = tmp_path / "home", tmp_path / "server.jsonl"
    src = write_problems(tmp_path / "src", 40)
    server = subprocess.Popen([sys.executable, "-m", "tests.fake_openai_server", "--port", "0", "--latency", "0.15",
                               "--log", str(log)], stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        url = server.stdout.readline().split()[-1]
        concurrency = 4
        args = ["generate", "--source", f"jsonl:{src}", "--teacher", "openai:fake-teacher", "--base-url", url,
                "--limit", "40", "--variant", "semantic", "--concurrency", str(concurrency), "--run", "g",
                "--no-progress"]
        run_dir = home / "runs" / "g"
        seen: dict[str, str] = {}
        partial = []

        def check() -> None:  # every answer completed so far is still there, with the same text
            now = _done_texts(run_dir)
            assert all(now.get(tid) == text for tid, text in seen.items()), f"seed {SEED}: a completed answer changed"
            seen.update(now)
            partial.append(len(now))

        done = _progress_target(lambda: _count(run_dir / "ledger.sqlite",
                                               "SELECT COUNT(*) FROM traces WHERE status='done'"), 40)
        killed = _run_and_kill(args, home, rng, kills=4, ready=done, after_kill=check)
        proc = lbdata(*args, home=home)
        assert proc.returncode == 0, proc.stderr
        check()
        assert len(seen) == 40 and killed >= 1, f"seed {SEED}: killed {killed}"
        print(f"generate: killed {killed} times, kept {partial} answers between kills")
        paid: dict[str, int] = {}
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("status") == 200:
                paid[entry["key"]] = paid.get(entry["key"], 0) + 1
        twice = sum(n - 1 for n in paid.values())
        assert twice <= concurrency * killed, f"seed {SEED}: {twice} answers paid twice after {killed} kills"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()


@pytest.mark.slow
def test_chaos_validate_and_build_and_view(tmp_path):
    rng = random.Random(SEED + 1)
    home = tmp_path / "home"
    run = _scene_run(home, limit=400)
    chash = ValidationConfig().config_hash

    killed = _run_and_kill(["validate", "r", "--no-progress"], home, rng, kills=3, delay=(0.4, 2.0))
    print(f"validate: killed {killed} times")
    assert lbdata("validate", "r", "--no-progress", home=home).returncode == 0
    with Ledger.open(run) as ledger:  # every trace judged once, on its own text
        assert ledger.verdict_trace_ids(chash) == ledger.done_trace_ids() and ledger.stale_verdicts(chash) == 0
        judged = {v.trace_id: v.accepted for v in ledger.iter_verdicts(chash)}
    fresh = tmp_path / "fresh"
    validate_run(_copy_run(run, fresh), progress=False)
    with Ledger.open(fresh) as ledger:
        assert judged == {v.trace_id: v.accepted for v in ledger.iter_verdicts(chash)}

    corpus_root = home / "corpora" / "c"

    def versions_whole() -> None:  # a visible version is complete; work folders are hidden
        for entry in corpus_root.iterdir() if corpus_root.is_dir() else []:
            if not entry.name.startswith("."):
                manifest = json.loads((entry / "manifest.json").read_text())
                files = [f for per in manifest["files"].values() for fs in per.values() for f in fs]
                assert files and all((entry / f).is_file() for f in files)

    def building(rng: random.Random):
        return lambda: corpus_root.is_dir() and any("~build~" in p.name for p in corpus_root.iterdir())

    killed = _run_and_kill(["build", "r", "--name", "c", "--no-progress"], home, rng, kills=3, ready=building,
                           delay=(0.0, 2.0), after_kill=versions_whole)
    print(f"build: killed {killed} times")
    assert killed >= 1
    proc = lbdata("build", "r", "--name", "c", "--no-progress", home=home)
    assert proc.returncode == 0, proc.stderr
    versions_whole()
    assert [p.name for p in corpus_root.iterdir() if p.name.startswith(".")] == []  # leftovers cleaned

    site = tmp_path / "site"

    def site_whole() -> None:
        assert not site.exists() or (site / "lbdata-view.json").exists()

    def viewing(rng: random.Random):
        return lambda: any("~partial~" in p.name for p in tmp_path.iterdir())

    killed = _run_and_kill(["view", "r", "--out", str(site), "--no-progress"], home, rng, kills=3, ready=viewing,
                           delay=(0.0, 1.5), after_kill=site_whole)
    print(f"view: killed {killed} times")
    assert killed >= 1
    proc = lbdata("view", "r", "--out", str(site), "--no-progress", home=home)
    assert proc.returncode == 0, proc.stderr
    assert (site / "index.html").exists() and not [p for p in tmp_path.iterdir() if "~partial~" in p.name]


def _copy_run(run: Path, dest: Path) -> Path:
    """A copy of a run's traces and problems without verdicts (SQLite's backup API, safe while open)."""
    import shutil

    dest.mkdir()
    shutil.copytree(run / "images", dest / "images")
    src = sqlite3.connect(run / "ledger.sqlite")
    dst = sqlite3.connect(dest / "ledger.sqlite")
    src.backup(dst)
    dst.execute("DELETE FROM verdicts")
    dst.commit()
    src.close()
    dst.close()
    return dest


@pytest.mark.slow
def test_chaos_eval_keeps_every_answer_once(tmp_path):
    from tests.fake_openai_server import write_problems

    rng = random.Random(SEED + 2)
    home = tmp_path / "home"
    src = write_problems(tmp_path / "src", 40)
    server = subprocess.Popen([sys.executable, "-m", "tests.fake_openai_server", "--port", "0", "--latency", "0.15",
                               "--models", "policy"], stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        url = server.stdout.readline().split()[-1]
        out = tmp_path / "eval"
        args = ["eval", "--base-url", url, "--served-model", "policy", "--data", f"jsonl:{src}", "--batch-size", "2",
                "--out", str(out), "--no-progress"]
        results = out / "results.jsonl"
        answered = _progress_target(lambda: results.read_bytes().count(b"\n") if results.exists() else 0, 40)
        killed = _run_and_kill(args, home, rng, kills=4, ready=answered, delay=(0.0, 0.2))
        assert killed >= 1
        print(f"eval: killed {killed} times")
        proc = lbdata(*args, home=home)
        assert proc.returncode == 0, proc.stderr
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert sorted(r["problem_id"] for r in rows) == sorted(f"problems:p{i}" for i in range(40))
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()


@pytest.mark.parametrize(("fmt", "mime"), [("TIFF", "image/png"), ("PPM", "image/png"), ("JPEG", "image/jpeg"),
                                           ("GIF", "image/gif"), ("WEBP", "image/webp"), ("BMP", "image/png")])
def test_data_url_type_matches_the_bytes_even_when_the_ledger_says_png(fmt, mime):
    """Runs written before images were checked hold TIFF and PPM bytes under a .png name."""
    from lbdata.hashing import sha256_bytes
    from lbdata.records import ImageRef, Problem
    from lbdata.teachers.base import TraceRequest
    from lbdata.teachers.openai import OpenAITeacher

    data = encoded(fmt, size=(56, 56))
    ref = ImageRef(sha256=sha256_bytes(data), ext="png", width=56, height=56)
    problem = Problem(id="t:1", images=[ref], question="Q?", answer="1", source="t")
    teacher = OpenAITeacher("m", base_url="http://127.0.0.1:9/v1", api_key="x")
    url = teacher.messages(TraceRequest(problem=problem, images=[data], variant="semantic_back", seed=1))[0][
        "content"][0]["image_url"]["url"]
    head, _, body = url.partition(",")
    assert head == f"data:{mime};base64"
    with Image.open(io.BytesIO(base64.b64decode(body))) as im:
        assert Image.MIME[im.format] == mime


@pytest.mark.slow
def test_two_generates_on_one_run_one_writes_none_paid_twice(tmp_path):
    from tests.fake_openai_server import write_problems

    home, log = tmp_path / "home", tmp_path / "server.jsonl"
    src = write_problems(tmp_path / "src", 30)
    server = subprocess.Popen([sys.executable, "-m", "tests.fake_openai_server", "--port", "0", "--latency", "0.3",
                               "--log", str(log)], stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        url = server.stdout.readline().split()[-1]
        args = [sys.executable, "-m", "lbdata.cli", "generate", "--source", f"jsonl:{src}", "--teacher",
                "openai:fake-teacher", "--base-url", url, "--limit", "30", "--variant", "semantic", "--run", "two",
                "--concurrency", "2", "--no-progress", "--home", str(home)]
        first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
        db = home / "runs" / "two" / "ledger.sqlite"
        deadline = time.monotonic() + 60
        while _count(db, "SELECT COUNT(*) FROM traces") == 0 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(args, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120)
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert second.returncode == 2 and f"process {first.pid} on " in second.stderr, second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        keys = [json.loads(line)["key"] for line in log.read_text().splitlines()]
        assert len(keys) == len(set(keys)) == 30
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
