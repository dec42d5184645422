"""What every training module shares, and nothing else: the names of the files a run writes into its
output folder, where the DeepSpeed configs live, and ``TrainResult``.

This module imports no other ``lbdata.train`` module, so any of them can import it (the package's import
graph is acyclic; ``tests/test_train.py`` checks it). Nothing here imports torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbdata.errors import ConfigError
from lbdata.resources import resource_dir

CURVE_FILE = "train_curve.png"
"""The loss/reward curve ``TrainMonitor`` draws into the model folder (linked from the card)."""
LOG_FILE = "train_log.csv"
"""Every logged step (loss, learning rate, reward means, trigger rate) as CSV."""
RUN_FILE = "lbdata_train.json"
"""The record of a finished run (base model, data, recipe hash, metrics); its presence marks the run finished."""
STARTED_FILE = "lbdata_started.json"
"""Written when training starts: which job this folder's checkpoints belong to (``lbdata.train.resume``)."""
CONFIG_FILE = "train_config.yaml"
CARD_FILE = "README.md"
ADAPTER_DIR = "adapter"
JOB_FILE = "lbdata_job.json"
"""The job ``lbdata.train.launch.relaunch`` hands to the processes ``accelerate launch`` starts."""
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
"""The files of a whole model's weights (a LoRA adapter folder has none of them)."""
CHECKPOINT_PREFIX = "checkpoint-"
"""The trainer's checkpoint folders in the output folder: ``checkpoint-<global step>``."""


@dataclass
class TrainResult:
    """Where the trained model went, its final metrics and the run record (``lbdata_train.json``)."""

    out: Path
    metrics: dict[str, float]
    record: dict[str, Any] = field(default_factory=dict)


def deepspeed_config_path(name: str) -> Path:
    """``zero2``, ``zero3``, ``zero3-offload`` (``training/deepspeed/``) or the path of a DeepSpeed JSON file."""
    path = Path(name)
    if path.is_file():
        return path.resolve()
    builtin = resource_dir("training") / "deepspeed" / f"{name.removesuffix('.json')}.json"
    if builtin.is_file():
        return builtin.resolve()
    available = sorted(p.stem for p in (resource_dir("training") / "deepspeed").glob("*.json"))
    raise ConfigError(f"--deepspeed {name!r} is neither a file nor one of: {', '.join(available)}")


def zero_stage(config_path: Path) -> int:
    """The ZeRO stage a DeepSpeed JSON file asks for (0 when it names none)."""
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read DeepSpeed config {config_path} ({exc}); fix or replace the file") from None
    return int(data.get("zero_optimization", {}).get("stage", 0))
