import os
from pathlib import Path

import datasets
import pytest

from lbdata.errors import SourceError, UsageError
from lbdata.records import BadRow
from lbdata.sources import load_source
from lbdata.sources.base import SourceRow
from tests.conftest import png_bytes


def _split(rows):
    good = [r for r in rows if isinstance(r, SourceRow)]
    bad = [r for r in rows if isinstance(r, BadRow)]
    return good, bad


def test_jsonl_rows_and_bad_rows(jsonl_source):
    src = load_source(f"jsonl:{jsonl_source}")
    assert src.columns == {"image": "images", "question": "problem", "answer": "answer", "choices": "choices", "id": "id"}
    good, bad = _split(list(src))
    assert [g.problem.id for g in good] == ["data:a", "data:b", "data:f"]
    b = good[1].problem
    assert b.answer == "7.5" and b.question == "Find x."
    assert good[2].problem.choices == ["1", "2"]
    assert good[0].images[0] == (jsonl_source.parent / "img" / "0.png").read_bytes()
    assert sorted(r.reason for r in bad) == ["bad_json", "duplicate_key", "image_not_found", "missing_answer", "unreadable_image"]


def test_parquet_and_saved_dataset_and_hf_folder(tmp_path):
    feats = datasets.Features({"image": datasets.Image(), "question": datasets.Value("string"),
                               "answer": datasets.Value("string")})
    import io

    from PIL import Image

    imgs = [Image.open(io.BytesIO(png_bytes(c))) for c in ("red", "blue")]
    ds = datasets.Dataset.from_dict({"image": imgs, "question": ["q1", "q2"], "answer": ["1", "2"]}, features=feats)
    ds.to_parquet(tmp_path / "t.parquet")
    ds.save_to_disk(tmp_path / "saved")
    (tmp_path / "hub" / "data").mkdir(parents=True)
    ds.to_parquet(tmp_path / "hub" / "data" / "train-00000-of-00001.parquet")
    for spec in (f"parquet:{tmp_path / 't.parquet'}", str(tmp_path / "saved"), f"hf:{tmp_path / 'hub'}@train"):
        good, bad = _split(list(load_source(spec)))
        assert [g.problem.answer for g in good] == ["1", "2"], spec
        assert not bad
        assert good[0].problem.images[0].width == 32


def test_revision_is_a_content_hash_wherever_the_data_lives(tmp_path, jsonl_source):
    """The same rows give the same revision from a saved folder, its copy and a Hub-style folder; other rows
    another; nothing is read from the dataset's private state."""
    import hashlib
    import shutil

    from lbdata.sources.files import dataset_fingerprint

    def dataset(answers):
        return datasets.Dataset.from_dict({"image": [png_bytes("red")] * len(answers), "q": ["q"] * len(answers),
                                           "answer": answers})

    ds = dataset(["1", "2"])
    ds.save_to_disk(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    (tmp_path / "hub" / "data").mkdir(parents=True)
    ds.to_parquet(tmp_path / "hub" / "data" / "train-00000-of-00001.parquet")
    dataset(["1", "3"]).save_to_disk(tmp_path / "other")
    cols = {"image": "image", "question": "q"}
    rev = {name: load_source(spec, columns=cols).describe()["revision"]
           for name, spec in (("a", str(tmp_path / "a")), ("copy", str(tmp_path / "copy")),
                              ("hub", f"hf:{tmp_path / 'hub'}@train"), ("other", str(tmp_path / "other")))}
    assert rev["a"] == rev["copy"] == rev["hub"] != rev["other"]
    assert all(len(r) == 16 and int(r, 16) >= 0 for r in rev.values())
    assert dataset_fingerprint(dataset(["1", "2"])) == dataset_fingerprint(dataset(["1", "2"]))  # in memory
    assert dataset_fingerprint(dataset(["1", "2"])) != dataset_fingerprint(dataset(["2", "1"]))
    jsonl = load_source(f"jsonl:{jsonl_source}").describe()["revision"]
    assert jsonl == hashlib.sha256(jsonl_source.read_bytes()).hexdigest()[:16]


def test_a_file_that_is_not_parquet_is_a_source_error(tmp_path):
    fake = tmp_path / "rows.parquet"
    fake.write_text("question,answer\n1+1,2\n")
    with pytest.raises(SourceError, match=r"rows\.parquet is not a Parquet file .*check the path after 'parquet:'"):
        load_source(f"parquet:{fake}")


def test_column_mapping_errors(jsonl_source):
    with pytest.raises(SourceError, match="pass --answer-col"):
        load_source(f"jsonl:{jsonl_source}", columns={"answer": "nope"})
    with pytest.raises(SourceError, match="not found"):
        load_source("jsonl:/does/not/exist.jsonl")
    with pytest.raises(UsageError, match="valid sources"):
        load_source("s3://bucket")


def test_explicit_columns(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes())
    (tmp_path / "x.jsonl").write_text('{"img": "a.png", "q": "How many?", "gt": "<answer>3</answer>"}\n')
    good, _ = _split(list(load_source(f"jsonl:{tmp_path / 'x.jsonl'}", columns={"image": "img", "question": "q", "answer": "gt"})))
    assert good[0].problem.answer == "3" and good[0].problem.id == "x:0"


@pytest.mark.parametrize("spec", ["jsonl:/tmp/" + "a" * 5000 + ".jsonl", "parquet:/tmp/" + "a" * 300 + "/t.parquet",
                                  "/tmp/" + "a" * 5000, "/tmp/" + "a" * 300 + "/saved@train"])
def test_a_source_path_longer_than_the_system_allows_is_one_line(spec):
    """``Path.is_file`` raises on a name over the system's limit (it only hides 'not found'): a traceback."""
    from lbdata.errors import LbdataError

    with pytest.raises(LbdataError, match="source|not found"):
        load_source(spec)


def test_a_large_arrow_file_is_fingerprinted_by_sampled_blocks(tmp_path, monkeypatch):
    """Above the sampling size a file is read in 64 blocks, not whole: a change inside a sampled block or of
    the size changes the digest, and the cost stays bounded whatever the size."""
    from lbdata.sources import files

    monkeypatch.setattr(files, "_SAMPLE_ABOVE", 1 << 20)
    monkeypatch.setattr(files, "_BLOCK", 1 << 10)
    path = tmp_path / "data.arrow"
    data = bytearray(os.urandom(4 << 20))
    path.write_bytes(data)
    reads = []
    real_open = Path.open

    def counting_open(self, *args, **kwargs):
        fh = real_open(self, *args, **kwargs)
        real_read = fh.read
        fh.read = lambda n=-1: reads.append(n) or real_read(n)
        return fh

    monkeypatch.setattr(Path, "open", counting_open)
    first = files._arrow_file_digest(path)
    assert len(reads) == 64 and all(n == 1 << 10 for n in reads)
    assert files._arrow_file_digest(path) == first
    data[0] ^= 1  # the first block is always sampled
    path.write_bytes(data)
    assert files._arrow_file_digest(path) != first
    path.write_bytes(bytes(data) + b"x")  # another size
    assert files._arrow_file_digest(path) != first
