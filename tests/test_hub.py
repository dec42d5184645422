"""Push to the Hub without a network: the staged folder round-trips through datasets.load_dataset, and the
upload sequence is checked at the HfApi boundary (its methods replaced, nothing sent)."""

from __future__ import annotations

from types import SimpleNamespace

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import CommitInfo, HfApi
from test_corpus import make_run

from lbdata.corpus import BuildConfig, build_corpus, data_files
from lbdata.errors import CorpusError, UsageError
from lbdata.hub import push_corpus, stage_corpus

SECRET = "hf_test_token_never_written_0123456789"


@pytest.fixture()
def corpus(home, tmp_path):
    run = make_run(tmp_path / "run", 20, n_images=2)
    return build_corpus([run], "hubby", BuildConfig(test_size=0.2), home=home)


class FakeHub:
    """Records the HfApi calls of a push; ``tags`` are the tags already in the repo."""

    def __init__(self, monkeypatch, *, exists: bool = False, tags: tuple[str, ...] = ()):
        self.calls: list[tuple[str, dict]] = []
        self.exists, self.tags = exists, list(tags)
        for name in ("repo_exists", "list_repo_refs", "create_repo", "upload_folder", "create_tag"):
            monkeypatch.setattr(HfApi, name, self._method(name))

    def _method(self, name):
        def call(api, *args, **kwargs):
            self.calls.append((name, {"args": args, **kwargs}))
            if name == "repo_exists":
                return self.exists
            if name == "list_repo_refs":
                return SimpleNamespace(tags=[SimpleNamespace(name=t) for t in self.tags], branches=[])
            if name == "upload_folder":
                self.uploaded = sorted(p.relative_to(kwargs["folder_path"]).as_posix()
                                       for p in kwargs["folder_path"].rglob("*") if p.is_file())
                return CommitInfo(commit_url="https://hf.co/datasets/org/hubby/commit/abc123", commit_message="m",
                                  commit_description="", oid="abc123def4567890", pr_url=None)
            return None

        return call

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]


def test_staged_folder_round_trips_through_load_dataset(corpus, tmp_path):
    staged = stage_corpus(f"hubby@{corpus.version}", repo="org/hubby", dest=tmp_path / "stage")
    header = yaml.safe_load((staged / "README.md").read_text().split("---\n")[1])
    assert [c["config_name"] for c in header["configs"]] == ["semantic_back", "solution_back"]
    assert 'load_dataset("org/hubby"' in (staged / "README.md").read_text()
    assert (staged / "manifest.json").read_bytes() == (corpus.path / "manifest.json").read_bytes()
    for cfg in ("semantic_back", "solution_back"):
        for split in ("train", "test"):
            ds = datasets.load_dataset(str(staged), name=cfg, split=split)
            assert isinstance(ds.features["images"].feature, datasets.Image)
            raw = ds.cast_column("images", datasets.List(datasets.Image(decode=False)))
            expected = [r for f in data_files(corpus.path, cfg, split) for r in pq.read_table(f).to_pylist()]
            got = raw.to_list()
            assert len(got) == len(expected) > 0
            for g, e in zip(got, expected, strict=True):
                assert [im["bytes"] for im in g["images"]] == [im["bytes"] for im in e["images"]]
                assert {k: v for k, v in g.items() if k != "images"} == {k: v for k, v in e.items() if k != "images"}


def test_push_creates_uploads_in_one_commit_and_tags(corpus, home, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    hub = FakeHub(monkeypatch)
    res = push_corpus(f"hubby@{corpus.version}", "org/hubby", private=True)
    assert hub.names() == ["repo_exists", "create_repo", "upload_folder", "create_tag"]
    calls = dict(hub.calls)
    assert calls["create_repo"]["args"] == ("org/hubby",)
    assert calls["create_repo"]["repo_type"] == "dataset" and calls["create_repo"]["private"] is True
    up = calls["upload_folder"]
    assert up["repo_id"] == "org/hubby" and up["repo_type"] == "dataset"
    assert corpus.version in up["commit_message"]
    assert "README.md" in hub.uploaded and "manifest.json" in hub.uploaded
    assert any(p.startswith("data/semantic_back/train-") for p in hub.uploaded)
    tag = calls["create_tag"]
    assert tag["tag"] == corpus.version and tag["revision"] == "abc123def4567890"
    assert res.pushed and res.commit == "abc123def4567890"
    # the token went to nothing lbdata wrote
    for p in home.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p


def test_pushing_a_version_that_is_there_is_a_no_op(corpus, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    hub = FakeHub(monkeypatch, exists=True, tags=("0123abcd", corpus.version))
    res = push_corpus(f"hubby@{corpus.version}", "org/hubby")
    assert hub.names() == ["repo_exists", "list_repo_refs"]
    assert not res.pushed and "already has" in res.message


def test_existing_repo_without_the_version_gets_a_new_commit(corpus, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    hub = FakeHub(monkeypatch, exists=True, tags=("0123abcd",))
    push_corpus("hubby", "org/hubby")
    assert hub.names() == ["repo_exists", "list_repo_refs", "create_repo", "upload_folder", "create_tag"]
    assert dict(hub.calls)["upload_folder"]["delete_patterns"] == ["data/**"]  # no stale shards of older versions


def test_dry_run_stages_and_sends_nothing(corpus, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    hub = FakeHub(monkeypatch)
    res = push_corpus("hubby@latest", "org/hubby", dry_run=True)
    assert hub.calls == [] and not res.pushed and "dry run" in res.message
    names = [f for f, _ in res.files]
    assert "README.md" in names and "manifest.json" in names and all(size > 0 for _, size in res.files)


def test_missing_token_and_bad_repo_are_one_clear_line(corpus, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored login either
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    FakeHub(monkeypatch)
    with pytest.raises(CorpusError, match="no Hugging Face token found; set HF_TOKEN"):
        push_corpus("hubby", "org/hubby")
    with pytest.raises(UsageError, match="ORG/NAME"):
        push_corpus("hubby", "just-a-name")


def test_hub_http_errors_become_one_line(corpus, monkeypatch):
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub.errors import HfHubHTTPError

    monkeypatch.setenv("HF_TOKEN", SECRET)
    FakeHub(monkeypatch)

    def denied(api, *a, **k):
        response = httpx2.Response(403, request=httpx2.Request("POST", "https://huggingface.co/api/repos/create"))
        raise HfHubHTTPError("403 Forbidden: you cannot write to org", response=response)

    monkeypatch.setattr(HfApi, "create_repo", denied)
    with pytest.raises(CorpusError, match=r"pushing to org/hubby failed \(403 Forbidden.*\); check that your token"):
        push_corpus("hubby", "org/hubby")
