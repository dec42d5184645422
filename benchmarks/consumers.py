"""Every export read by the trainers' own code: LLaMA-Factory, verl, EasyR1's loader rules, TRL.

Builds a small corpus (the offline scene teacher on synthetic charts, validated, built), exports it in
every format, then hands each export to the consumer that reads it, each in its own cached virtual
environment with its own pinned versions (torch pinned to 2.13.0, CPU; no torchvision):

- ``llamafactory`` (LLaMA-Factory 0.9.5, transformers 4.57, datasets 3.6): ``get_dataset`` with the
  export's ``dataset_info.json`` and the tiny model's tokenizer and processor, i.e. the whole
  preprocessing of ``llamafactory-cli train`` (template, <image> expansion, label masking), checked
  example by example; then ``run_exp`` (what ``llamafactory-cli train`` calls) for two SFT steps;
- ``verl`` (verl 0.9.1, transformers 5.x): ``RLHFDataset`` over the ``verl`` export, one item read
  (chat template applied, images decoded, ``<image>`` turned into image tokens);
- ``easyr1``: EasyR1 is not on PyPI; its loader's rules (split ``problem`` on ``<image>``, one image
  per slot, ``answer`` as ground truth) are checked with datasets 3.6 in the LLaMA-Factory venv;
- ``datasets-3.6``: every Parquet export loaded with ``datasets.load_dataset("parquet")`` of
  datasets 3.6 (the floor in pyproject) and its images decoded;
- ``trl`` (this environment): ``SFTTrainer`` and ``GRPOTrainer`` run two steps on the tiny model;
- ``tiny model`` in transformers 4.49, 4.57 and 5.10: the folder's chat text, token ids, image grid
  and logits equal what lbdata's own transformers computes.

Virtual environments live under ``$LBDATA_CONSUMER_VENVS`` (default ``~/.cache/lbdata/consumer-venvs``), one per
consumer, and are built once: a ``lbdata-consumer.json`` marker with the pinned requirements makes
later runs reuse them (a changed pin rebuilds). ``--no-build`` skips consumers whose venv is missing
instead of building it. The table printed at the end has one row per consumer × format::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/consumers.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/consumers.py --only verl,trl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCH = "torch==2.13.0"
PYTHON = os.environ.get("LBDATA_CONSUMER_PYTHON", "python3.11")

# name -> (requirements installed with their dependencies, requirements installed with --no-deps, why)
VENVS: dict[str, dict[str, object]] = {
    "llamafactory": {
        # llamafactory 0.9.5 requires torchvision and torchaudio; neither may be installed next to the
        # CPU torch 2.13 here (no torchaudio wheel exists for 2.13, and torchvision pulls its own torch),
        # so llamafactory itself goes in with --no-deps and its data pipeline's own needs are listed.
        "deps": [
            "transformers==4.57.6", "datasets==3.6.0", "accelerate==1.11.0", "peft==0.18.1",
            "trl==0.24.0", "tokenizers<0.23", "numpy<2.3", "pillow", "pyyaml", "omegaconf", "einops",
            "fire", "pydantic", "sentencepiece", "tiktoken", "protobuf", "safetensors", "scipy", "pandas",
            "matplotlib", "packaging", "tyro<0.9.0", "fsspec",
        ],
        "no_deps": ["llamafactory==0.9.5"],
    },
    "verl": {
        # verl 0.9.1 with every hard dependency it declares (ray, tensordict, wandb, ...): none needs CUDA.
        "deps": ["verl==0.9.1", "transformers==5.10.4", "datasets==4.0.0"],
        "no_deps": [],
    },
    "transformers-4.49": {
        # the oldest transformers with Qwen2.5-VL: does the tiny model's folder load there too?
        "deps": ["transformers==4.49.0", "pillow", "numpy<2.3"],
        "no_deps": [],
    },
}


def venv_root() -> Path:
    return Path(os.environ.get("LBDATA_CONSUMER_VENVS") or Path.home() / ".cache" / "lbdata" / "consumer-venvs")


def venv_python(name: str) -> Path:
    return venv_root() / name / "bin" / "python"


def _spec(name: str) -> dict[str, object]:
    return {"python": PYTHON, "torch": TORCH, **VENVS[name]}


def venv_ready(name: str) -> bool:
    marker = venv_root() / name / "lbdata-consumer.json"
    try:
        return json.loads(marker.read_text()) == _spec(name)
    except (OSError, ValueError):
        return False


def build_venv(name: str, log: Path) -> None:
    """Create ``<root>/<name>``: torch first, then the consumer with torch held by a constraints file."""
    root = venv_root() / name
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    spec = VENVS[name]
    py = str(root / "bin" / "python")
    constraints = root.parent / f".{name}-constraints.txt"
    constraints.write_text(TORCH + "\n")
    steps = [
        [PYTHON, "-m", "venv", str(root)],
        [py, "-m", "pip", "install", "-q", TORCH],
        [py, "-m", "pip", "install", "-q", "-c", str(constraints), *spec["deps"]],
    ]
    if spec["no_deps"]:
        steps.append([py, "-m", "pip", "install", "-q", "--no-deps", "-c", str(constraints), *spec["no_deps"]])
    with log.open("a") as fh:
        for cmd in steps:
            fh.write("$ " + " ".join(cmd) + "\n")
            fh.flush()
            rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT)
            if rc:
                raise RuntimeError(f"building the {name} venv failed at `{' '.join(cmd[-3:])}`; see {log}")
    out = subprocess.run([py, "-c", "import torch, importlib.util as u; "
                          "print(torch.__version__, u.find_spec('torchvision') is None)"],
                         capture_output=True, text=True)
    version, no_tv = (out.stdout.split() + ["", ""])[:2]
    if not version.startswith("2.13.0") or "+cpu" not in version or no_tv != "True":
        raise RuntimeError(f"the {name} venv has torch {version!r} (torchvision absent: {no_tv}); "
                           "expected the CPU torch 2.13.0 and no torchvision")
    (root / "lbdata-consumer.json").write_text(json.dumps(_spec(name), indent=2) + "\n")


def ensure_venv(name: str, *, build: bool, log: Path) -> str | None:
    """Return None when the venv is usable, else the reason it is not."""
    if venv_ready(name):
        return None
    if not build:
        return f"no venv at {venv_root() / name} (run without --no-build to build it)"
    try:
        build_venv(name, log)
    except (RuntimeError, OSError) as exc:
        return str(exc)
    return None



# ---------------------------------------------------------------------------- checks run inside each venv
# Shared by the child scripts: an image-only Qwen2.5-VL processor built from stock classes, for
# environments without torchvision, where the stock processor cannot load its video processor. It is
# what lbdata.train.processor does for transformers 5.2x, written for the consumer's own version.
_COMMON = r"""
import importlib.util, json, sys, traceback
from pathlib import Path

RESULTS = []
ARGS = json.loads(sys.argv[1])


def record(consumer, fmt, fn):
    try:
        RESULTS.append({"consumer": consumer, "format": fmt, "ok": True, "detail": fn()})
    except BaseException as exc:  # a consumer's assert or its own error: both are a failed check
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        RESULTS.append({"consumer": consumer, "format": fmt, "ok": False,
                        "detail": f"{type(exc).__name__}: {first}"[:240]})


def finish():
    Path(ARGS["result"]).write_text(json.dumps(RESULTS))


def load_processor(model_dir, tokenizer=None):
    from transformers import AutoProcessor, AutoTokenizer
    if importlib.util.find_spec("torchvision") is not None:
        return AutoProcessor.from_pretrained(model_dir), "stock AutoProcessor"
    from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
    from transformers.processing_utils import ProcessorMixin
    try:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil as IP
    except ImportError:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor as IP

    class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
        attributes = ["image_processor", "tokenizer"]
        image_processor_class = "AutoImageProcessor"
        tokenizer_class = "AutoTokenizer"
        video_processor_class = None

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_dir)
    template = (Path(model_dir) / "chat_template.jinja").read_text()
    processor = ImageOnlyQwen2_5_VLProcessor(IP.from_pretrained(model_dir), tokenizer, chat_template=template)
    return processor, "image-only processor (no torchvision)"


def exported_rows(export_dir, config, split):
    return json.loads((Path(export_dir) / "lbdata_export.json").read_text())["rows"][config][split]
"""

# One image and one conversation, made the same way here and in every child.
_PROBE = r"""
def probe_image():
    import numpy as np
    from PIL import Image
    return Image.fromarray((np.arange(64 * 96 * 3).reshape(64, 96, 3) * 7 % 256).astype("uint8"))


PROBE = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Find x. <back> </back>"}]}]
"""
_COMMON += _PROBE

# The tiny model's folder in the consumer's transformers: same chat text, same token ids (image tokens
# expanded), same image grid and the same logits as lbdata computes with its own transformers.
_TINY = r"""
def tiny_model():
    import torch
    import transformers
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    ref = ARGS["tiny"]
    tokenizer = AutoTokenizer.from_pretrained(ARGS["model"])
    processor, how = load_processor(ARGS["model"], tokenizer)
    text = processor.apply_chat_template(PROBE, add_generation_prompt=True, tokenize=False)
    assert text == ref["chat"], f"chat template renders {text!r}"
    inputs = processor(text=[text], images=[probe_image()], return_tensors="pt")
    assert inputs["input_ids"][0].tolist() == ref["ids"], "token ids differ"
    assert inputs["image_grid_thw"].tolist() == ref["grid"], "image grid differs"
    model = AutoModelForImageTextToText.from_pretrained(ARGS["model"]).eval()
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1, :16].tolist()
    diff = max(abs(a - b) for a, b in zip(logits, ref["logits"]))
    assert diff < 1e-4, f"logits differ by {diff:.2e} (weights not loaded as saved?)"
    return (f"{type(tokenizer).__name__}, {type(processor.image_processor).__name__}, {len(ref['ids'])} ids, "
            f"logits equal (max diff {diff:.0e}); {how}")


import transformers as _tf
record(f"transformers-{_tf.__version__}", "tiny model", tiny_model)
"""

_LLAMAFACTORY = r"""
import importlib.machinery, types


def llamafactory():
    # No torchaudio wheel exists for torch 2.13 and LLaMA-Factory's mm_plugin imports it at module level
    # (for audio only): stand in an empty module so the image pipeline can be imported.
    if importlib.util.find_spec("torchaudio") is None:
        stand_in = types.ModuleType("torchaudio")
        stand_in.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
        sys.modules["torchaudio"] = stand_in
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer
    from llamafactory.model.patcher import patch_processor

    export = Path(ARGS["exports"]["llamafactory"])
    info = json.loads((export / "dataset_info.json").read_text())
    name = next(k for k in info if k.endswith("_semantic_back_train"))
    records = json.loads((export / info[name]["file_name"]).read_text())
    model_args, data_args, training_args, _, _ = get_train_args(dict(
        stage="sft", do_train=True, model_name_or_path=ARGS["model"], dataset=name, dataset_dir=str(export),
        template="qwen2_vl", finetuning_type="full", output_dir=ARGS["tmp"] + "/lf-out", cutoff_len=8192,
        overwrite_cache=True, report_to="none", per_device_train_batch_size=1, bf16=False,
        image_max_pixels=50176, image_min_pixels=3136, disable_gradient_checkpointing=True,
        trust_remote_code=False))
    module = load_tokenizer(model_args)
    how = "stock AutoProcessor"
    if module["processor"] is None:  # LLaMA-Factory dropped the stock processor (needs torchvision)
        module["processor"], how = load_processor(ARGS["model"], module["tokenizer"])
        patch_processor(module["processor"], module["tokenizer"], model_args)
    tokenizer = module["tokenizer"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    dataset = get_dataset(template, model_args, data_args, training_args, stage="sft", **module)["train_dataset"]
    assert len(dataset) == len(records), f"{len(dataset)} examples from {len(records)} records"
    pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    start = tokenizer.convert_tokens_to_ids("<|vision_start|>")
    for example, record in zip(dataset, records):
        ids, labels = example["input_ids"], example["labels"]
        assert ids.count(start) == len(record["images"]), "one vision block per image"
        trained = tokenizer.decode([i for i, lab in zip(ids, labels) if lab != -100])
        assert pad not in [i for i, lab in zip(ids, labels) if lab != -100], "image tokens are not trained"
        assert trained.startswith(record["messages"][1]["content"]), trained[:80]
    n_pad = dataset[0]["input_ids"].count(pad)
    return f"get_dataset: {len(dataset)} examples, {n_pad} image tokens in the first, labels = answer; {how}"


def llamafactory_train():
    # `llamafactory-cli train` in-process: run_exp with the dict a YAML file would hold, two steps on CPU.
    import llamafactory.train.sft.workflow as workflow
    from llamafactory.model.patcher import patch_processor
    from llamafactory.train.tuner import run_exp

    how = "stock AutoProcessor"
    stock_load = workflow.load_tokenizer

    def load_tokenizer(model_args):  # without torchvision LLaMA-Factory finds no processor
        nonlocal how
        module = stock_load(model_args)
        if module["processor"] is None:
            module["processor"], how = load_processor(ARGS["model"], module["tokenizer"])
            patch_processor(module["processor"], module["tokenizer"], model_args)
        return module

    workflow.load_tokenizer = load_tokenizer
    export = Path(ARGS["exports"]["llamafactory"])
    name = next(k for k in json.loads((export / "dataset_info.json").read_text()) if k.endswith("_semantic_back_train"))
    out = Path(ARGS["tmp"]) / "lf-train"
    run_exp(dict(stage="sft", do_train=True, model_name_or_path=ARGS["model"], dataset=name, dataset_dir=str(export),
                 template="qwen2_vl", finetuning_type="full", output_dir=str(out), overwrite_output_dir=True,
                 cutoff_len=8192, overwrite_cache=True, report_to="none", per_device_train_batch_size=2,
                 max_steps=2, learning_rate=1e-4, logging_steps=1, bf16=False, save_strategy="no",
                 image_max_pixels=50176, image_min_pixels=3136, disable_gradient_checkpointing=True,
                 freeze_vision_tower=True, plot_loss=False, dataloader_num_workers=0))
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert state["global_step"] == 2 and losses, state
    assert (out / "model.safetensors").is_file(), "no model written"
    return f"run_exp (llamafactory-cli train): 2 steps, losses {', '.join(f'{x:.3f}' for x in losses)}; {how}"


def datasets_loads(fmt):
    import datasets
    from PIL import Image

    def check():
        export = Path(ARGS["exports"][fmt])
        path = export / "solution_back" / "train.parquet"
        ds = datasets.load_dataset("parquet", data_files={"train": str(path)}, split="train")
        assert len(ds) == exported_rows(export, "solution_back", "train")
        row = ds[0]
        assert row["images"] and all(isinstance(im, Image.Image) for im in row["images"]), "images decode"
        if fmt == "easyr1":  # EasyR1's loader: one image slot per <image> split point, answer = ground truth
            for ex in ds:
                assert len(ex["problem"].split("<image>")) == len(ex["images"]) + 1 and ex["answer"]
        return f"datasets {datasets.__version__}: {len(ds)} rows, {len(row['images'])} PIL images in row 0"
    return check


record("llamafactory", "llamafactory", llamafactory)
record("llamafactory", "llamafactory", llamafactory_train)
for fmt in ("trl-sft", "trl-grpo", "easyr1", "verl"):
    record("datasets-3.6" if fmt != "easyr1" else "easyr1-loader", fmt, datasets_loads(fmt))
finish()
"""

_VERL = r"""
def verl():
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    export = Path(ARGS["exports"]["verl"])
    tokenizer = AutoTokenizer.from_pretrained(ARGS["model"])
    processor, how = load_processor(ARGS["model"], tokenizer)
    # filter_overlong_prompts measures prompts with qwen_vl_utils, which imports torchvision; without it
    # every row would be reported as an error and dropped, so the length filter is off here.
    config = OmegaConf.create({"prompt_key": "prompt", "image_key": "images", "max_prompt_length": 8192,
                               "filter_overlong_prompts": False, "cache_dir": ARGS["tmp"] + "/verl-cache",
                               "return_raw_chat": True})
    total = 0
    for split in ("train", "test"):
        path = export / "semantic_back" / f"{split}.parquet"
        dataset = RLHFDataset(data_files=[str(path)], tokenizer=tokenizer, config=config, processor=processor)
        assert len(dataset) == exported_rows(export, "semantic_back", split)
        total += len(dataset)
        for i in range(len(dataset)):
            item = dataset[i]
            images = [b["image"] for m in item["raw_prompt"] for b in m["content"] if b.get("type") == "image"]
            text = processor.apply_chat_template(item["raw_prompt"], add_generation_prompt=True, tokenize=False)
            inputs = processor(text=[text], images=images, return_tensors="pt")
            merge = processor.image_processor.merge_size ** 2
            n_pad = int((inputs["input_ids"] == processor.image_token_id).sum())
            assert n_pad == int(inputs["image_grid_thw"].prod(-1).sum()) // merge, "image tokens = patches"
            assert item["reward_model"]["ground_truth"] and item["extra_info"]["variant"] == "semantic_back"
            assert item["data_source"].endswith("/semantic_back")
    return f"RLHFDataset: {total} items, chat template + processor: {n_pad} image tokens in the last; {how}"


record("verl", "verl", verl)
finish()
"""

_TRL = r"""
import math


def trl_run(kind):
    def run():
        import datasets
        import trl
        from transformers import AutoModelForImageTextToText

        from lbdata.train.processor import load_processor as lbdata_processor
        from lbdata.train.rewards import accuracy_reward, look_back_format_reward

        fmt = "trl-sft" if kind == "sft" else "trl-grpo"
        path = Path(ARGS["exports"][fmt]) / "solution_back" / "train.parquet"
        ds = datasets.load_dataset("parquet", data_files={"train": str(path)}, split="train")
        processor = lbdata_processor(ARGS["model"], min_pixels=3136, max_pixels=50176)
        model = AutoModelForImageTextToText.from_pretrained(ARGS["model"], dtype="float32")
        common = dict(output_dir=ARGS["tmp"] + f"/trl-{kind}", max_steps=2, per_device_train_batch_size=2,
                      learning_rate=1e-4, report_to="none", use_cpu=True, bf16=False, save_strategy="no",
                      logging_steps=1, gradient_checkpointing=False, dataloader_num_workers=0, disable_tqdm=True)
        if kind == "sft":
            args = trl.SFTConfig(max_length=None, assistant_only_loss=True, **common)
            trainer = trl.SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=processor)
            detail = "SFTTrainer"
        else:
            seen = {}

            def spy(fn):
                def reward(completions, **columns):
                    seen.setdefault("columns", set()).update(columns)
                    for key in ("variant", "question"):
                        seen.setdefault(key, set()).update(map(str, columns.get(key) or []))
                    return fn(completions, **columns)
                reward.__name__ = fn.__name__
                return reward

            args = trl.GRPOConfig(num_generations=2, max_completion_length=16, beta=0.0, temperature=1.0,
                                  reward_weights=[1.0, 0.1], **common)
            trainer = trl.GRPOTrainer(model=model, reward_funcs=[spy(accuracy_reward), spy(look_back_format_reward)],
                                      args=args, train_dataset=ds, processing_class=processor)
            detail = "GRPOTrainer"
        out = trainer.train()
        assert trainer.state.global_step == 2 and math.isfinite(out.training_loss)
        if kind == "grpo":
            assert seen.get("variant") == {"solution_back"}, f"rewards saw variant {seen.get('variant')}"
            assert seen.get("question"), "rewards saw no question column"
            missing = {"question", "choices", "variant", "solution"} - seen["columns"]
            assert not missing, f"rewards did not get the columns {sorted(missing)}"
            detail += " (rewards got variant=solution_back, question, choices, solution)"
        return f"{detail}, trl {trl.__version__}: 2 steps, loss {out.training_loss:.3f}"
    return run


for kind in ARGS["only_trl"]:
    record("trl", "trl-sft" if kind == "sft" else "trl-grpo", trl_run(kind))
finish()
"""


# ---------------------------------------------------------------------------- driver
def _lbdata(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "lbdata.cli", *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"lbdata {' '.join(args[:2])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def build_exports(work: Path, env: dict[str, str], limit: int) -> tuple[Path, dict[str, str]]:
    """A small offline corpus (synthetic charts, scene teacher), the tiny model, and every export."""
    from lbdata.export import FORMATS

    home = work / "home"
    _lbdata("generate", "--home", str(home), "--run", "c", "--limit", str(limit), env=env)
    _lbdata("validate", "c", "--home", str(home), env=env)
    _lbdata("build", "c", "--name", "consumers", "--test-size", "0.25", "--home", str(home), env=env)
    model = work / "tiny"
    _lbdata("train", "tiny-model", "--out", str(model), env=env)
    exports = {}
    for fmt in FORMATS:
        exports[fmt] = str(work / "exports" / fmt)
        _lbdata("export", "consumers@latest", "--format", fmt, "--out", exports[fmt], "--home", str(home), env=env)
    return model, exports


def tiny_reference(model_dir: Path) -> dict:
    """What lbdata's own transformers makes of the tiny model: chat text, ids, image grid, logits."""
    import torch
    from transformers import AutoModelForImageTextToText

    from lbdata.train.processor import load_processor

    scope: dict = {}
    exec(_PROBE, scope)  # noqa: S102 - probe_image and PROBE, exactly as the children define them
    processor = load_processor(model_dir)
    text = processor.apply_chat_template(scope["PROBE"], add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[scope["probe_image"]()], return_tensors="pt")
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1, :16].tolist()
    return {"chat": text, "ids": inputs["input_ids"][0].tolist(), "grid": inputs["image_grid_thw"].tolist(),
            "logits": logits}


def run_child(python: Path | str, code: str, args: dict, log: Path, timeout: int, env: dict[str, str]) -> list[dict]:
    script = Path(args["tmp"]) / f"check-{log.stem}.py"
    script.write_text(_COMMON + code)
    result = Path(args["tmp"]) / f"result-{log.stem}.json"
    args = {**args, "result": str(result)}
    try:
        with log.open("w") as fh:
            rc = subprocess.call([str(python), str(script), json.dumps(args)], stdout=fh, stderr=subprocess.STDOUT,
                                 timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return [{"consumer": log.stem, "format": "*", "ok": False, "detail": f"timed out after {timeout} s; see {log}"}]
    if not result.exists():
        tail = log.read_text().strip().splitlines()[-1:] or [""]
        return [{"consumer": log.stem, "format": "*", "ok": False, "detail": f"exit {rc}: {tail[0][:200]}; see {log}"}]
    return json.loads(result.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="llamafactory,verl,transformers-4.49,trl",
                    help="comma-separated: llamafactory, verl, transformers-4.49, trl")
    ap.add_argument("--no-build", action="store_true", help="skip a consumer whose venv is missing")
    ap.add_argument("--limit", type=int, default=12, help="synthetic problems in the corpus")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (logs, exports)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per consumer")
    opts = ap.parse_args()
    only = [x.strip() for x in opts.only.split(",") if x.strip()]
    unknown = set(only) - {*VENVS, "trl"}
    if unknown:
        print(f"unknown consumer {sorted(unknown)[0]!r}; use {', '.join([*VENVS, 'trl'])}", file=sys.stderr)
        return 2
    work = opts.keep or Path(tempfile.mkdtemp(prefix="lbdata-consumers-"))
    work.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    child_env = {k: v for k, v in env.items() if k != "PYTHONPATH"} | {"HF_DATASETS_CACHE": str(work / "hf-cache")}
    t0 = time.time()
    model, exports = build_exports(work, env, opts.limit)
    args = {"model": str(model), "exports": exports, "tmp": str(work), "tiny": tiny_reference(model)}
    print(f"corpus, tiny model and {len(exports)} exports in {time.time() - t0:.0f} s under {work}", flush=True)
    rows: list[dict] = []
    for name, code in (("llamafactory", _TINY + _LLAMAFACTORY), ("verl", _TINY + _VERL),
                       ("transformers-4.49", _TINY + "finish()\n")):
        if name not in only:
            continue
        t = time.time()
        why = ensure_venv(name, build=not opts.no_build, log=work / f"venv-{name}.log")
        if why:
            rows.append({"consumer": name, "format": "*", "ok": None, "detail": f"skipped: {why}"})
            continue
        rows += run_child(venv_python(name), code, args, work / f"{name}.log", opts.timeout, child_env)
        print(f"{name}: {time.time() - t:.0f} s", flush=True)
    if "trl" in only:
        t = time.time()
        rows += run_child(sys.executable, _TRL, {**args, "only_trl": ["sft", "grpo"]}, work / "trl.log",
                          opts.timeout, env)
        print(f"trl: {time.time() - t:.0f} s", flush=True)
    print_table(rows)
    if not opts.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["ok"] is not False for r in rows) else 1


def print_table(rows: list[dict]) -> None:
    versions = {name: _spec(name)["deps"] for name in VENVS}
    print()
    print(f"{'consumer':<20} {'format':<13} {'result':<6} detail")
    print("-" * 110)
    for r in rows:
        result = "skip" if r["ok"] is None else ("pass" if r["ok"] else "FAIL")
        print(f"{r['consumer']:<20} {r['format']:<13} {result:<6} {r['detail']}")
    print()
    for name, deps in versions.items():
        print(f"{name} venv: {TORCH} (CPU, no torchvision), " + ", ".join(d for d in deps if "==" in d))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--build-venvs"]:
        for _name in sys.argv[2:] or list(VENVS):
            _t0 = time.time()
            _err = ensure_venv(_name, build=True, log=Path(tempfile.gettempdir()) / f"lbdata-venv-{_name}.log")
            print(_name, "ok" if _err is None else _err, f"{time.time() - _t0:.0f}s", flush=True)
        sys.exit(0)
    sys.exit(main())
