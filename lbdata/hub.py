"""Publish a corpus version on the Hugging Face Hub.

``stage_corpus`` lays out a Hub-ready folder (``data/<config>/<split>-*.parquet``, ``README.md`` with the
card rendered for the target repo, ``manifest.json``); ``push_corpus`` creates the dataset repo if
missing, uploads the folder in one commit whose message names the version, and tags that commit with
the version id. A version whose tag is already in the repo is not pushed again. The token comes from
``HF_TOKEN`` or the huggingface_hub login and is handed to nothing but ``HfApi``: lbdata writes it
nowhere.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbdata.corpus import CARD_FILE, MANIFEST_FILE, read_manifest, render_card, resolve_version
from lbdata.errors import CorpusError, UsageError
from lbdata.workspace import home_dir, staged_dir

log = logging.getLogger(__name__)

REPO_TYPE = "dataset"


@dataclass
class PushResult:
    """What ``push_corpus`` did (or, with ``dry_run``, would do)."""

    repo: str
    name: str
    version: str
    staged: Path
    files: list[tuple[str, int]] = field(default_factory=list)  # (path in repo, bytes)
    pushed: bool = False
    commit: str | None = None
    url: str | None = None
    message: str = ""


def check_repo_id(repo: str) -> str:
    """``repo`` if it is a dataset id the Hub accepts (``ORG/NAME``; the Hub's own validator), else one line."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    parts = repo.split("/")
    if len(parts) != 2 or not all(parts):
        raise UsageError(f"--repo must be ORG/NAME (a Hub dataset id), got {repo!r}")
    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        reason = str(exc).split(":")[0].strip().rstrip(".")
        raise UsageError(f"--repo {repo!r} is not a valid Hub dataset id ({reason}); use ORG/NAME with letters, "
                         "digits, '-', '_' or '.'") from None
    return repo


def stage_corpus(
    spec: str, *, repo: str | None = None, dest: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
) -> Path:
    """Lay out the Hub-ready folder of ``spec`` (hard links where possible) and return it.

    The folder is written whole into a hidden sibling and renamed into place, so a killed push never
    leaves a half-staged folder that a later upload could take for a complete one.
    """
    if repo is not None:
        check_repo_id(repo)
    path = resolve_version(spec, home)
    manifest = read_manifest(str(path))
    final = Path(dest) if dest else home_dir(home) / "staging" / f"{manifest['name']}-{manifest['version']}"
    with staged_dir(final) as target:
        _stage_into(target, path, manifest, spec, repo)
    return final


def _stage_into(target: Path, path: Path, manifest: dict[str, Any], spec: str, repo: str | None) -> None:
    for rel in [f for per in manifest["files"].values() for files in per.values() for f in files]:
        src, dst = path / rel, target / rel
        if not src.is_file():
            raise CorpusError(f"{src} is missing from corpus {spec}; rebuild it with `lbdata build`")
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    shutil.copy2(path / MANIFEST_FILE, target / MANIFEST_FILE)
    (target / CARD_FILE).write_text(render_card(manifest, repo=repo))


def staged_files(folder: Path) -> list[tuple[str, int]]:
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file())


def _hub_error(repo: str, exc: Exception) -> CorpusError:
    from huggingface_hub.errors import HfHubHTTPError

    status = exc.response.status_code if isinstance(exc, HfHubHTTPError) and exc.response is not None else None
    if status in (401, 403):
        fix = "check that your token can write to it (`hf auth login`, or set HF_TOKEN to a write token)"
    elif status == 404:
        fix = "check the ORG in --repo and that your token belongs to it"
    else:
        fix = "check your network connection and try again"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CorpusError(f"pushing to {repo} failed ({first}); {fix}")


def push_corpus(
    spec: str,
    repo: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    home: str | os.PathLike[str] | None = None,
    api: Any = None,
) -> PushResult:
    """Stage ``spec`` and push it to the dataset repo ``repo``: one commit, tagged with the version id."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HTTPError

    check_repo_id(repo)
    manifest = read_manifest(spec, home)
    name, version = manifest["name"], manifest["version"]
    staged = stage_corpus(spec, repo=repo, home=home)
    result = PushResult(repo=repo, name=name, version=version, staged=staged, files=staged_files(staged))
    if dry_run:
        result.message = f"dry run: staged {len(result.files)} files in {staged}; nothing was uploaded"
        return result
    if api is None:
        if get_token() is None:
            raise CorpusError("no Hugging Face token found; set HF_TOKEN or run `hf auth login`, then push again")
        api = HfApi()
    try:
        if api.repo_exists(repo, repo_type=REPO_TYPE):
            tags = {t.name for t in api.list_repo_refs(repo, repo_type=REPO_TYPE).tags}
            if version in tags:
                result.message = f"{repo} already has {name}@{version} (tag {version}); nothing to push"
                return result
        api.create_repo(repo, repo_type=REPO_TYPE, private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo,
            repo_type=REPO_TYPE,
            folder_path=staged,
            commit_message=f"lbdata corpus {name}@{version}",
            commit_description=f"Corpus version {version} (parent {manifest.get('parent') or 'none'}), "
            f"built with lbdata {manifest.get('lbdata_version')}.",
            delete_patterns=["data/**"],
        )
        api.create_tag(repo, tag=version, tag_message=f"lbdata corpus {name}@{version}", revision=info.oid,
                       repo_type=REPO_TYPE, exist_ok=True)
    except (HTTPError, OSError) as exc:  # HfHubHTTPError is both; network errors are HTTPError
        raise _hub_error(repo, exc) from None
    result.pushed, result.commit, result.url = True, info.oid, info.commit_url
    result.message = f"pushed {name}@{version} to {repo} (commit {info.oid[:10]}, tag {version})"
    return result
