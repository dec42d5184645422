"""Offline detection for Hub sources: fail at once, with one line, instead of retrying for half a minute.

Without a network, ``datasets.load_dataset("org/name")`` retries each request five times with a
warning per retry before it gives up. ``check_hub_reachable`` opens one TCP connection to the Hub
endpoint (``HF_ENDPOINT``, default huggingface.co) with a short timeout first; when that fails, the
source stops with a line naming ``HF_HUB_OFFLINE`` (which makes ``datasets`` use its local cache)
and the local alternatives. With ``HF_HUB_OFFLINE=1`` or a proxy configured nothing is probed.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from lbdata.errors import SourceError

LOCAL_ALTERNATIVES = "jsonl:PATH, parquet:PATH or a folder written by Dataset.save_to_disk"
_TRUE = ("1", "true", "yes", "on")


def hub_offline() -> bool:
    """True when the user asked the Hugging Face libraries to stay offline."""
    return any(os.environ.get(var, "").lower() in _TRUE for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def check_hub_reachable(dataset: str, *, timeout_s: float = 3.0, what: str | None = None,
                        alternatives: str | None = None) -> None:
    """Raise ``SourceError`` at once when the Hub endpoint cannot be reached (no-op offline or behind a proxy)."""
    if hub_offline() or any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    url = urlsplit(hub_endpoint())
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as exc:
        raise SourceError(no_hub_message(dataset, f"{host}:{port} unreachable: {exc.strerror or exc}", what=what,
                                         alternatives=alternatives)) from None


def no_hub_message(dataset: str, why: str, *, what: str | None = None, alternatives: str | None = None) -> str:
    """One line for a Hub dataset (or model: ``what``) that cannot be had, naming HF_HUB_OFFLINE and the way out."""
    what = what or f"hf:{dataset}"
    alternatives = alternatives or f"use a local source: {LOCAL_ALTERNATIVES}"
    if hub_offline():
        return (f"{what} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set ({why}); "
                f"download it once with a network, or {alternatives}")
    return (f"cannot reach the Hugging Face Hub for {what} ({why}); with no network set HF_HUB_OFFLINE=1 "
            f"to use a cached copy, or {alternatives}")
