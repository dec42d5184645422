import sqlite3

import pytest

from lbdata.errors import LedgerError
from lbdata.ledger import Ledger
from lbdata.records import BadRow, Problem, TeacherInfo, Trace, Verdict
from lbdata.sources.base import image_ref
from tests.conftest import png_bytes


def _problem(i: int = 0) -> tuple[Problem, bytes]:
    data = png_bytes("red", (20 + i, 10))
    return Problem(id=f"t:{i}", images=[image_ref(data)], question="q?", answer="1", source="t"), data


def _trace(pid: str, variant: str = "semantic_back") -> Trace:
    info = TeacherInfo(backend="x", model="m")
    tid = Trace.make_id(problem_id=pid, variant=variant, mode="write", teacher=info, prompt_hash="p")
    return Trace(id=tid, problem_id=pid, variant=variant, teacher=info, prompt_hash="p", text="<think>a</think>")


def test_problem_and_image_stored_once(tmp_path):
    with Ledger.create(tmp_path / "run") as led:
        p, data = _problem()
        assert led.put_problem(p, [data]) is True
        assert led.put_problem(p, [data]) is False
        assert [x.id for x in led.iter_problems()] == ["t:0"]
        assert led.image_bytes(p.images[0].filename) == data
        assert len(list((tmp_path / "run" / "images").iterdir())) == 1


def test_trace_failure_then_success_and_never_downgraded(tmp_path):
    with Ledger.create(tmp_path / "run") as led:
        t = _trace("t:0")
        led.put_failure(trace_id=t.id, problem_id="t:0", variant=t.variant, mode="write", sample=0, attempt=0,
                        error="server_error: 500", cost_usd=0.01)
        assert led.trace_status(t.id) == "failed"
        assert [f["error"] for f in led.iter_failures()] == ["server_error: 500"]
        led.put_trace(t)
        assert led.trace_status(t.id) == "done"
        led.put_failure(trace_id=t.id, problem_id="t:0", variant=t.variant, mode="write", sample=0, attempt=0,
                        error="late")
        assert led.trace_status(t.id) == "done"
        assert led.get_trace(t.id) == t
        assert led.counts()["traces"] == 1 and led.counts()["failed"] == 0


def test_verdicts_keyed_by_config_hash(tmp_path):
    with Ledger.create(tmp_path / "run") as led:
        a = _trace("t:0").id
        led.put_trace(_trace("t:0"))
        led.put_verdict(Verdict(trace_id=a, accepted=True, config_hash="c1"))
        led.put_verdicts([Verdict(trace_id=a, accepted=False, reasons=["back_empty"], config_hash="c2")])
        assert led.get_verdict(a, "c1").accepted is True
        assert led.get_verdict(a, "c2").reasons == ["back_empty"]
        assert led.verdict_trace_ids("c2") == {a}
        assert led.verdict_config_hashes() == ["c1", "c2"]


def test_bad_rows_recorded_and_counted(tmp_path):
    with Ledger.create(tmp_path / "run") as led:
        led.put_bad_row(BadRow(source="s", key="1", reason="missing_answer"))
        led.put_bad_row(BadRow(source="s", key="2", reason="missing_answer"))
        assert led.counts()["bad_rows_by_reason"] == {"missing_answer": 2}


def test_not_a_ledger(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "ledger.sqlite").write_text("garbage " * 100)
    with pytest.raises(LedgerError, match="not a usable lbdata ledger"):
        Ledger.open(run)
    other = tmp_path / "other"
    other.mkdir()
    sqlite3.connect(other / "ledger.sqlite").execute("CREATE TABLE x (a)").connection.close()
    with pytest.raises(LedgerError, match="not an lbdata ledger"):
        Ledger.open(other)
    with pytest.raises(LedgerError, match="holds no ledger"):
        Ledger.open(tmp_path / "nothing")


def test_a_failed_image_write_leaves_no_half_file_and_old_ones_are_swept(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    with Ledger.create(tmp_path / "run") as led:
        (led.images_dir / "ab.png.999999.tmp").write_bytes(b"half")  # left by a killed writer
        assert led.sweep_partial_images() == 1 and not list(led.images_dir.iterdir())

        def full(self, data):  # the disk fills up half-way through the file
            with open(self, "wb") as fh:
                fh.write(data[:2])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Path, "write_bytes", full)
        with pytest.raises(OSError):
            led.put_image("cd.png", b"data")
        monkeypatch.undo()
        assert not list(led.images_dir.iterdir())


def test_a_trace_is_written_once_and_a_verdict_counts_only_for_the_text_it_judged(tmp_path):
    from lbdata.hashing import sha256_text

    with Ledger.create(tmp_path / "run") as led:
        t = _trace("t:0")
        assert led.put_trace(t) is True
        assert led.put_trace(t.model_copy(update={"text": "<think>other</think>"})) is False
        assert led.get_trace(t.id).text == t.text
        led.put_verdict(Verdict(trace_id=t.id, accepted=True, config_hash="c"))  # no hash given: the stored text's
        assert led.get_verdict(t.id, "c").text_sha256 == sha256_text(t.text)
        assert led.verdict_trace_ids("c") == {t.id} and led.stale_verdicts("c") == 0
        led.put_verdict(Verdict(trace_id=t.id, accepted=True, config_hash="c", text_sha256=sha256_text("else")))
        assert led.verdict_trace_ids("c") == set() and led.stale_verdicts("c") == 1
        assert list(led.iter_verdicts("c", current=True)) == [] and len(list(led.iter_verdicts("c"))) == 1
