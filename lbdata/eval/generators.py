"""Who answers the prompts: the ``Generator`` interface and a local checkpoint run with transformers.

A served model behind an OpenAI-compatible API is ``lbdata.eval.served.ServedModel``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from lbdata.errors import UsageError
from lbdata.eval.config import EvalConfig
from lbdata.eval.data import EvalItem
from lbdata.hashing import content_hash, sha256_bytes
from lbdata.prompts import SYSTEM_PROMPT

FAILED = "error"
"""``finish_reason`` of a request that got no response (counted as failed, not as a wrong answer)."""
TOP_P = 0.95  # the paper's vLLM sampling (used only when temperature > 0)
_DEFAULTS = EvalConfig()


@dataclass(frozen=True)
class GenerationParams:
    """How responses are sampled: greedy at temperature 0 (the paper's evaluation), else top-p 0.95.

    The defaults and bounds are ``EvalConfig``'s; a refused value is a ``UsageError`` naming the setting.
    """

    max_new_tokens: int = _DEFAULTS.max_new_tokens
    temperature: float = _DEFAULTS.temperature
    seed: int = _DEFAULTS.seed

    def __post_init__(self) -> None:
        EvalConfig.checked(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class Generation:
    """One response: its text, its length in tokens (when known) and why it stopped."""

    text: str
    tokens: int | None
    finish_reason: str | None  # "stop", "length", "error" (no response: the request failed), or None when unknown
    error: str | None = None  # why the request failed (finish_reason "error")


class Generator(Protocol):
    """Something that answers prompts about images: a local checkpoint or a served model."""

    label: str  # the model name written into every result row

    def fingerprint(self) -> str:
        """What identifies the model's weights for resuming (a path is not enough after retraining)."""
        ...

    def generate(self, items: Sequence[EvalItem], prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        ...


def chat_messages(prompt: str, n_images: int) -> list[dict[str, Any]]:
    """The paper's conversation: the system prompt, then a user turn of the image(s) and the prompt."""
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": [*({"type": "image"} for _ in range(n_images)), {"type": "text", "text": prompt}]},
    ]


def open_images(blobs: Sequence[bytes]):
    """Encoded image bytes as RGB PIL images (the processor then applies lbdata's pixel band)."""
    from PIL import Image

    from lbdata.images import to_rgb

    out = []
    for blob in blobs:
        with Image.open(io.BytesIO(blob)) as im:
            im.load()
            out.append(to_rgb(im))
    return out


def model_fingerprint(path: str | Path) -> str:
    """A cheap content fingerprint of a checkpoint: config and, per weight file, size, head and tail bytes."""
    root = Path(path)
    parts: list[str] = []
    for p in sorted(root.glob("*.json")) + sorted(root.glob("*.safetensors")):
        size = p.stat().st_size
        with p.open("rb") as fh:
            head = fh.read(1 << 20)
            fh.seek(max(0, size - (1 << 20)))
            tail = fh.read()
        parts.append(f"{p.name}:{size}:{sha256_bytes(head)}:{sha256_bytes(tail)}")
    return content_hash(parts)


class LocalModel:
    """A checkpoint directory run with transformers: batched generation with left padding, CPU or GPU.

    The processor comes from ``lbdata.train.processor.load_processor`` (image-only, lbdata's pixel
    band, never a bare tokenizer); the model from ``AutoModelForImageTextToText``. On a GPU the weights
    load in bfloat16, on a CPU in float32.
    """

    def __init__(self, path: str | Path, *, device: str | None = None, attn_implementation: str | None = None):
        import torch
        from transformers import AutoModelForImageTextToText

        from lbdata.train.processor import load_processor

        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise UsageError(f"{self.path} is not a model directory (no config.json); pass a checkpoint folder")
        self.label = str(path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.processor = load_processor(self.path)
        self.processor.tokenizer.padding_side = "left"
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        self.model = AutoModelForImageTextToText.from_pretrained(self.path, dtype=dtype, **kwargs).to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.processor.tokenizer.eos_token_id}
        self.eos_ids.discard(None)

    def fingerprint(self) -> str:
        return model_fingerprint(self.path)

    def generation_config(self, params: GenerationParams):
        """The model's generation config with the evaluation's sampling (no repetition penalty)."""
        import copy

        config = copy.deepcopy(self.model.generation_config)
        sampling = params.temperature > 0
        config.do_sample = sampling
        config.temperature = params.temperature if sampling else None
        config.top_p = TOP_P if sampling else None
        config.top_k = None
        config.repetition_penalty = 1.0
        config.max_new_tokens = params.max_new_tokens
        config.pad_token_id = self.processor.tokenizer.pad_token_id
        return config

    def encode(self, prompts: Sequence[str], images: Sequence[Sequence[bytes]]):
        texts = [
            self.processor.apply_chat_template(chat_messages(p, len(imgs)), add_generation_prompt=True, tokenize=False)
            for p, imgs in zip(prompts, images, strict=True)
        ]
        pil = [open_images(imgs) for imgs in images]
        return self.processor(text=texts, images=pil, padding=True, return_tensors="pt").to(self.device)

    def generate(self, items: Sequence[EvalItem], prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        import torch

        inputs = self.encode(prompts, [it.images for it in items])
        if params.temperature > 0:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=self.generation_config(params))
        new = out[:, inputs["input_ids"].shape[1] :].tolist()
        results = []
        for ids in new:
            stop = next((i for i, t in enumerate(ids) if t in self.eos_ids), None)
            content = ids if stop is None else ids[:stop]
            text = self.processor.tokenizer.decode(content, skip_special_tokens=True)
            results.append(Generation(text=text, tokens=len(content), finish_reason="length" if stop is None else "stop"))
        return results
