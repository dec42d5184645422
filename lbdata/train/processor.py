"""An image-only Qwen2.5-VL processor that needs no torchvision, registered with the Auto classes.

Stock ``Qwen2_5_VLProcessor`` also loads a video processor, and Qwen's video processor needs
torchvision; without it ``AutoProcessor.from_pretrained`` fails or silently returns the bare tokenizer,
and every image is then dropped (``transformers serve`` treats the model as text-only).

The tiny model is saved with stock names only (``model_type`` ``qwen2_5_vl``, image processor
``Qwen2VLImageProcessor``, tokenizer ``PreTrainedTokenizerFast``, no ``processor_class``): where
torchvision is installed, any transformers from 4.5x on resolves the stock ``Qwen2_5_VLProcessor`` from
the model type. Where it is not, importing this module maps ``qwen2_5_vl`` to lbdata's image-only
processor in ``AutoProcessor`` (the stock one could not load there anyway). This module provides:

- ``LbdataQwen2VLImageProcessor``: Qwen2-VL's PIL/numpy image processor (patch 14, temporal patch 2,
  merge 2) resizing with lbdata's one pixel-band policy (``lbdata.images.fit_pixels``);
- ``LbdataQwen2_5_VLProcessor``: ``Qwen2_5_VLProcessor`` with an image processor and a tokenizer, no
  video processor;
- ``register()``: maps both class names into ``AutoImageProcessor`` / ``AutoProcessor`` (models saved by
  older lbdata versions name them), and without torchvision maps the ``qwen2_5_vl`` model type to the
  image-only processor. Called on import of this module.
- ``load_processor(path)``: register, load, and refuse a result without an image processor.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
from transformers import AutoImageProcessor, AutoProcessor, PretrainedConfig, Qwen2_5_VLConfig
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import SizeDict
from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.processing_utils import ProcessorMixin

from lbdata.errors import ConfigError
from lbdata.images import fit_pixels

log = logging.getLogger(__name__)


class LbdataQwen2VLImageProcessor(Qwen2VLImageProcessorPil):
    """Qwen2-VL image processing (PIL/numpy) with the pixel band of ``lbdata.images``."""

    def resize(self, image: np.ndarray, size: SizeDict, resample, factor: int, **kwargs) -> np.ndarray:
        if not size.shortest_edge or not size.longest_edge:
            raise ValueError(
                f"size needs 'shortest_edge' (min pixels) and 'longest_edge' (max pixels), got {size}"
            )
        height, width = image.shape[-2:]
        new_width, new_height = fit_pixels(width, height, size.shortest_edge, size.longest_edge, factor)
        return PilBackend.resize(
            self, image, size=SizeDict(height=new_height, width=new_width), resample=resample
        )

    def get_number_of_image_patches(self, height: int, width: int, images_kwargs: dict | None = None) -> int:
        images_kwargs = images_kwargs or {}
        min_pixels = images_kwargs.get("min_pixels", self.size["shortest_edge"])
        max_pixels = images_kwargs.get("max_pixels", self.size["longest_edge"])
        patch_size = images_kwargs.get("patch_size", self.patch_size)
        merge_size = images_kwargs.get("merge_size", self.merge_size)
        new_width, new_height = fit_pixels(width, height, min_pixels, max_pixels, patch_size * merge_size)
        return (new_height // patch_size) * (new_width // patch_size)


class LbdataQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor for images and text only (no video processor, so no torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save, then name stock classes only (see ``write_stock_names``), so the folder loads anywhere."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        write_stock_names(Path(save_directory))
        return result

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """Load as ``ProcessorMixin`` does, with lbdata's image processor whatever type the folder names."""
        processor = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        if not isinstance(processor.image_processor, LbdataQwen2VLImageProcessor):
            config = processor.image_processor.to_dict()
            config.pop("image_processor_type", None)
            processor.image_processor = LbdataQwen2VLImageProcessor.from_dict(config)
        return processor


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    edit(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_stock_names(folder: Path) -> None:
    """Rewrite a saved processor's files to stock names that transformers 4.5x and 5.x both read.

    Tokenizer ``PreTrainedTokenizerFast`` (``tokenizer.json`` as is; 5.x's ``Qwen2Tokenizer`` would
    rebuild the pre-tokenizer), image processor ``Qwen2VLImageProcessor`` in ``processor_config.json``
    (5.x) and ``preprocessor_config.json`` (4.x, with ``min_pixels``/``max_pixels``), and no
    ``processor_class``: the processor follows from the model type (``Qwen2_5_VLProcessor``).
    """
    image_token, video_token = "<|image_pad|>", "<|video_pad|>"

    def tokenizer(cfg: dict) -> None:
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg.pop("processor_class", None)
        cfg.pop("backend", None)
        cfg["extra_special_tokens"] = {"image_token": image_token, "video_token": video_token}
        cfg["image_token"], cfg["video_token"] = image_token, video_token
        cfg["model_input_names"] = ["input_ids", "attention_mask"]  # 4.x's generic class adds token_type_ids

    image_processor: dict = {}

    def processor(cfg: dict) -> None:
        cfg.pop("processor_class", None)
        ip = cfg.setdefault("image_processor", {})
        ip["image_processor_type"] = "Qwen2VLImageProcessor"
        size = ip.get("size") or {}
        if size.get("shortest_edge") and size.get("longest_edge"):  # the 4.x spelling of size
            ip["min_pixels"], ip["max_pixels"] = size["shortest_edge"], size["longest_edge"]
        image_processor.update(ip)

    def preprocessor(cfg: dict) -> None:
        cfg.clear()
        cfg.update(image_processor)

    _edit_json(folder / "tokenizer_config.json", tokenizer)
    _edit_json(folder / "processor_config.json", processor)
    _edit_json(folder / "preprocessor_config.json", preprocessor)


class _RegistrationKey(PretrainedConfig):
    """The Auto mappings are keyed by config class; this key stands for "lbdata's image-only Qwen2.5-VL".

    A key of our own, rather than ``Qwen2_5_VLConfig``, leaves the stock mapping of real Qwen2.5-VL
    checkpoints untouched; lookups by the class names saved in a model directory find our classes.
    """

    model_type = "lbdata_qwen2_5_vl_image_only"


def register() -> None:
    """Make ``AutoImageProcessor`` / ``AutoProcessor`` resolve lbdata's class names. Idempotent."""
    AutoImageProcessor.register(
        _RegistrationKey, image_processor_classes={"pil": LbdataQwen2VLImageProcessor}, exist_ok=True
    )
    AutoProcessor.register(_RegistrationKey, LbdataQwen2_5_VLProcessor, exist_ok=True)
    if not torchvision_available():
        AutoProcessor.register(Qwen2_5_VLConfig, LbdataQwen2_5_VLProcessor, exist_ok=True)


def torchvision_available() -> bool:
    """Whether the stock Qwen2.5-VL processor (its video processor needs torchvision) can load here."""
    return importlib.util.find_spec("torchvision") is not None


def check_processor(processor: object, source: str | Path) -> None:
    """Raise unless ``processor`` can turn images into model inputs (not a bare tokenizer)."""
    if getattr(processor, "image_processor", None) is None:
        raise ConfigError(
            f"the processor loaded from {source} is a {type(processor).__name__} without an image processor, "
            "so images would be silently dropped; import lbdata.train.processor (or call "
            "lbdata.train.processor.register()) before AutoProcessor.from_pretrained, and check that the "
            "directory has processor_config.json or preprocessor_config.json (rebuild a tiny model with "
            "`lbdata train tiny-model`)"
        )


def load_processor(path: str | Path, **kwargs) -> LbdataQwen2_5_VLProcessor | ProcessorMixin:
    """``AutoProcessor.from_pretrained(path)`` with lbdata's classes registered; never a bare tokenizer."""
    register()
    processor = AutoProcessor.from_pretrained(str(path), **kwargs)
    check_processor(processor, path)
    log.debug("loaded %s from %s", type(processor).__name__, path)
    return processor


register()
