"""Serve a local model over the OpenAI API with ``transformers serve``, images included.

``transformers serve`` loads the processor with ``AutoProcessor.from_pretrained``. For a model saved with
lbdata's image-only processor (the tiny model, or anything trained from it) that lookup only works in a
process where ``lbdata.train.processor`` registered its classes; elsewhere it silently falls back to the
bare tokenizer, the server takes the model for a text-only one and drops every image. So this launcher
runs the server in its own process after registering, and checks the processor before it listens.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lbdata.errors import UsageError

SERVE_PROCESSOR_ENV = "LBDATA_SERVE_PROCESSOR"

log = logging.getLogger(__name__)


def check_servable(model_dir: str | Path) -> Path:
    """Fail fast unless ``model_dir`` can be served with images; return its absolute path (the model name)."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        raise UsageError("serving needs fastapi, uvicorn and openai: pip install 'lbdata[serve]'")
    path = Path(model_dir).resolve()
    if not (path / "config.json").is_file():
        raise UsageError(
            f"{path} holds no model (config.json missing); build one with `lbdata train tiny-model`"
        )

    from lbdata.train.processor import load_processor

    load_processor(path)  # registers lbdata's processor classes; raises on a text-only processor
    return path


def serve_model(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run ``transformers serve`` pinned to ``model_dir`` on ``host:port`` until interrupted.

    Clients name the model by the absolute path of ``model_dir`` (``GET /v1/models`` lists it).
    """
    path = check_servable(model_dir)

    from transformers.cli.serve import Serve

    # transformers >= 5.25 loads the model in a spawned process, which imports lbdata.cli afresh: this variable
    # tells it to register lbdata's processor classes there too (see lbdata/cli/__init__.py).
    os.environ[SERVE_PROCESSOR_ENV] = "1"

    log.info("serving %s on http://%s:%d/v1", path, host, port)
    Serve(force_model=str(path), host=host, port=port)


# ---------------------------------------------------------------------------- what a server serves


def served_model_names(base_url: str, *, api_key: str | None = None, timeout_s: float = 10.0) -> list[str] | None:
    """The model names ``GET {base_url}/models`` lists, or None when the server does not say: no such route,
    a key it refuses, a body that is not the OpenAI list, or no answer at all (the caller's requests then meet
    the server's state and report it their own way). Credentials in the URL are not sent to this route."""
    import json
    import os
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base_url.rstrip("/") + "/models")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    url = urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))
    key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):  # HTTPError and URLError are OSErrors
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def check_served_model(base_url: str, name: str, *, flag: str, api_key: str | None = None) -> None:
    """Fail with one line unless the server at ``base_url`` serves ``name`` (checked through ``/v1/models``).

    ``flag`` is the option that named the model (``--served-model NAME`` or ``--teacher openai:NAME``), so
    the message says what to change. Servers that do not list their models are trusted.
    """
    names = served_model_names(base_url, api_key=api_key)
    if names is None or name in names:
        return
    import difflib

    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    listed = ", ".join(repr(n) for n in names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    raise UsageError(
        f"{base_url} does not serve the model {name!r}; it serves {listed or 'no model'} (GET {base_url.rstrip('/')}"
        f"/models): pass {flag.replace('NAME', close[0] if close else 'NAME')} with a served name"
    )
