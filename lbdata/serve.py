"""Serve a local model over the OpenAI API with ``transformers serve``, images included.

``transformers serve`` loads the processor with ``AutoProcessor.from_pretrained``. For a model saved with
lbdata's image-only processor (the tiny model, or anything trained from it) that lookup only works in a
process where ``lbdata.train.processor`` registered its classes; elsewhere it silently falls back to the
bare tokenizer, the server takes the model for a text-only one and drops every image. So this launcher
runs the server in its own process after registering, and checks the processor before it listens.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lbdata.errors import UsageError

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

    log.info("serving %s on http://%s:%d/v1", path, host, port)
    Serve(force_model=str(path), host=host, port=port)
