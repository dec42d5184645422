"""lbdata train sft / grpo: recipes, launch commands, data, and tiny-model training on CPU.

The slow tests train the tiny offline Qwen2.5-VL on a synthetic corpus made with ``lbdata.generate`` and
``lbdata.corpus``: SFT (the loss falls; the checkpoint reloads in a fresh process and generates from an
image), GRPO from that checkpoint (both rewards computed and logged, checkpoint saved), and ZeRO-2 SFT in
two processes under ``accelerate launch``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lbdata.cli import app
from lbdata.errors import ConfigError, UsageError
from lbdata.resources import resource_dir
from lbdata.train.launch import accelerate_command, deepspeed_config_path, needs_launch
from lbdata.train.recipes import load_recipe, parse_overrides

TRAINING = resource_dir("training")


# ============================================================================ package structure (fast)


def _train_imports() -> dict[str, set[str]]:
    """Every ``lbdata.train`` module mapped to the ``lbdata.train`` modules it imports, at any level of the file."""
    import ast

    package = Path(__file__).resolve().parents[1] / "lbdata" / "train"
    names = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in names:
        deps: set[str] = set()
        for node in ast.walk(ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]  # also `from lbdata.train import x`
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps |= {t.split(".")[2] for t in targets if t.startswith("lbdata.train.") and t.split(".")[2] in names}
        graph[name] = deps - {name}
    return graph


def test_train_modules_import_each_other_without_a_cycle():
    from graphlib import CycleError, TopologicalSorter

    graph = _train_imports()
    assert {"sft", "grpo", "model", "launch", "common", "recipes"} <= set(graph)
    assert graph["common"] == set()  # the leaf every other module may import
    assert {"model", "recipes", "common"} <= graph["sft"] and "launch" in {m for m, d in graph.items() if "sft" in d}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle in lbdata.train: {' -> '.join(exc.args[1])}")
    assert order[0] in {m for m, d in graph.items() if not d}


# ============================================================================ recipes (fast)


@pytest.mark.parametrize(("kind", "name"), [("sft", "sft"), ("sft", "tiny-sft"), ("grpo", "grpo"),
                                             ("grpo", "tiny-grpo")])
def test_every_builtin_recipe_builds_its_trl_config(kind, name, tmp_path):
    from lbdata.train.recipes import model_config, trainer_config

    recipe = load_recipe(name, kind, {"use_cpu": True, **({"use_vllm": False} if kind == "grpo" else {})})
    args = trainer_config(recipe, output_dir=str(tmp_path))
    assert type(args).__name__ == ("SFTConfig" if kind == "sft" else "GRPOConfig")
    assert model_config(recipe).dtype in ("bfloat16", "float32")
    if kind == "sft":
        assert args.max_length is None and args.assistant_only_loss  # image tokens never cut; assistant-only loss
        assert recipe.options.freeze_vision_tower
    else:
        assert list(args.reward_weights) == [1.0, 0.1]


def test_paper_recipes_state_the_papers_values():
    sft = yaml.safe_load((TRAINING / "recipes" / "sft.yaml").read_text())
    grpo = yaml.safe_load((TRAINING / "recipes" / "grpo.yaml").read_text())
    assert sft["num_train_epochs"] == 1 and sft["model_name_or_path"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert grpo["num_train_epochs"] == 2 and grpo["temperature"] == 1.0
    assert grpo["reward_weights"] == [1.0, 0.1]
    # global batch 128 prompts x 5 rollouts, counted in completions by TRL, on 8 processes
    assert grpo["per_device_train_batch_size"] * 8 * grpo["gradient_accumulation_steps"] == 128 * grpo["num_generations"]
    assert grpo["use_vllm"] is True and grpo["vllm_mode"] == "colocate"
    text = (TRAINING / "recipes" / "grpo.yaml").read_text()
    # every value the paper does not state says where it comes from
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line and not line.startswith(("num_train_epochs",
                                                                                        "temperature", "reward_weights")):
            assert "#" in line and any(tag in line for tag in ("(EasyR1)", "(TRL)", "(lbdata)")), line


def test_unknown_recipe_key_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 1.0e-5\nlerning_rate: 2.0e-5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'lerning_rate' in .*bad.yaml; did you mean 'learning_rate'"):
        load_recipe(bad, "sft")
    with pytest.raises(ConfigError, match="unknown key 'num_generations'"):
        load_recipe("tiny-sft", "sft", {"num_generations": 4})  # a GRPO key is not an SFT key
    with pytest.raises(ConfigError, match="neither a file nor a built-in recipe"):
        load_recipe("no-such-recipe", "sft")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="flat mapping"):
        load_recipe(tmp_path / "list.yaml", "sft")


def test_a_bad_number_is_blamed_on_where_it_was_written(tmp_path):
    with pytest.raises(ConfigError, match=r"bad value for 'max_steps' in --set: '2x' is not a number"):
        load_recipe("tiny-grpo", "grpo", parse_overrides(["max_steps=2x"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_steps: 2x\n")
    with pytest.raises(ConfigError, match=r"bad value for 'max_steps' in .*bad\.yaml: '2x' is not a number"):
        load_recipe(bad, "grpo", parse_overrides(["learning_rate=1e-5"]))


def test_a_misspelt_set_key_is_one_line_that_suggests_the_field():
    from tests.test_cli import one_line_error, run

    proc = run("train", "grpo", "--data", "synthetic", "--limit", "2", "--recipe", "tiny-grpo",
               "--set", "lerning_rate=1e-5")
    one_line_error(proc, "unknown key 'lerning_rate' in --set; did you mean 'learning_rate'?")


@pytest.mark.parametrize(("setting", "why"), [
    ("per_device_train_batch_size=0", "must be at least 1 \\(got 0\\)"),
    ("gradient_accumulation_steps=-3", "must be at least 1"),
    ("learning_rate=nan", "must be a finite number"),
    ("learning_rate=-1e-5", "must be at least 0"),
    ("seed=99999999999999999999", "must be at least 0 and at most 4294967295"),
    ("max_steps=", "must be a whole number"),
    ("max_steps=-2", "must be at least -1"),
    ("num_train_epochs=inf", "must be a finite number"),
])
def test_a_setting_the_trainer_would_fail_on_mid_run_is_refused_when_the_recipe_is_read(setting, why, tmp_path):
    key = setting.split("=")[0]
    with pytest.raises(ConfigError, match=rf"bad value for '{key}' in --set: {why}"):
        load_recipe("tiny-grpo", "grpo", parse_overrides([setting]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("per_device_train_batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"bad value for 'per_device_train_batch_size' in .*bad\.yaml"):
        load_recipe(bad, "sft")
    for recipe, kind in (("tiny-sft", "sft"), ("tiny-grpo", "grpo"), ("sft", "sft"), ("grpo", "grpo")):
        load_recipe(recipe, kind)  # the shipped recipes pass


def test_a_bad_set_value_is_one_line_before_any_model_loads():
    from tests.test_cli import one_line_error, run

    proc = run("train", "grpo", "--data", "synthetic", "--limit", "2", "--recipe", "tiny-grpo",
               "--set", "per_device_train_batch_size=0")
    one_line_error(proc, "bad value for 'per_device_train_batch_size' in --set: must be at least 1 (got 0)")


def test_recipe_configs_come_from_one_hf_argument_parser(tmp_path):
    from trl import GRPOConfig, ModelConfig

    from lbdata.train.recipes import GRPOOptions, recipe_configs, recipe_parser

    assert [c.__name__ for c in recipe_parser("grpo").dataclass_types] == ["GRPOConfig", "ModelConfig", "GRPOOptions"]
    recipe = load_recipe("tiny-grpo", "grpo", {"use_cpu": True, "beta": "1e-2", "format_reward": "regex"})
    args, model_args, options = recipe_configs(recipe, output_dir=str(tmp_path))
    assert isinstance(args, GRPOConfig) and isinstance(model_args, ModelConfig) and isinstance(options, GRPOOptions)
    assert args.beta == 0.01 and args.output_dir == str(tmp_path) and model_args.dtype == "float32"
    assert options == recipe.options and options.format_reward == "regex"
    assert recipe.recipe_hash == load_recipe("tiny-grpo", "grpo", {"use_cpu": True, "beta": 0.01,
                                                                     "format_reward": "regex"}).recipe_hash


def test_cli_overrides_win_and_numbers_are_numbers():
    overrides = parse_overrides(["learning_rate=1e-5", "bf16=false", "max-steps=3", "report_to=none"])
    assert overrides == {"learning_rate": "1e-5", "bf16": False, "max_steps": 3, "report_to": "none"}
    recipe = load_recipe("tiny-sft", "sft", overrides)
    assert recipe.values["learning_rate"] == 1e-5 and isinstance(recipe.values["learning_rate"], float)
    assert recipe.values["max_steps"] == 3
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["learning_rate"])
    with pytest.raises(ConfigError, match="not a number"):
        load_recipe("tiny-sft", "sft", {"learning_rate": "fast"})


def test_bad_lbdata_option_values_are_config_errors():
    with pytest.raises(ConfigError, match="min_pixels"):
        load_recipe("tiny-sft", "sft", {"min_pixels": 100})
    with pytest.raises(ConfigError, match="larger than max_pixels"):
        load_recipe("tiny-sft", "sft", {"min_pixels": 100_000, "max_pixels": 50_000})


def test_grpo_recipe_checks_reward_weights_and_the_vllm_switch():
    from lbdata.train.grpo import GRPOJob, grpo_recipe

    job = GRPOJob(data="x@y", model="m", recipe="tiny-grpo", overrides={"reward_weights": [1.0]})
    with pytest.raises(ConfigError, match="two values"):
        grpo_recipe(job)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="use_vllm needs a GPU"):
            grpo_recipe(GRPOJob(data="x@y", model="m", recipe="grpo"))
    with pytest.raises(ConfigError, match="no model"):
        grpo_recipe(GRPOJob(data="x@y", recipe="tiny-grpo"))


# ============================================================================ launch (fast)


def test_deepspeed_and_accelerate_configs_are_consistent():
    stages = {"zero2": 2, "zero3": 3, "zero3-offload": 3}
    for name, stage in stages.items():
        path = deepspeed_config_path(name)
        data = json.loads(path.read_text())
        assert data["zero_optimization"]["stage"] == stage
        assert data["train_micro_batch_size_per_gpu"] == "auto"  # filled from the recipe by the trainer
        if stage == 3:
            assert data["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert json.loads(deepspeed_config_path("zero3-offload").read_text())["zero_optimization"]["offload_param"][
        "device"] == "cpu"
    configs = sorted((TRAINING / "accelerate").glob("*.yaml"))
    assert {p.stem for p in configs} >= {"ddp", "zero2", "zero3", "zero3-offload", "multi-node-zero3"}
    for path in configs:
        config = yaml.safe_load(path.read_text())
        ds_file = config.get("deepspeed_config", {}).get("deepspeed_config_file")
        if ds_file:
            assert (TRAINING.parent / ds_file).is_file(), path
        assert config["num_processes"] == 8 * config["num_machines"]
    with pytest.raises(ConfigError, match="neither a file nor one of"):
        deepspeed_config_path("zero9")


def test_accelerate_command_lines(tmp_path, monkeypatch):
    job = tmp_path / "job.json"
    zero2 = accelerate_command(job, num_processes=2, deepspeed=deepspeed_config_path("zero2"), mixed_precision="no")
    assert zero2[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert zero2[zero2.index("--num_processes") + 1] == "2"
    assert "--use_deepspeed" in zero2 and zero2[zero2.index("--deepspeed_config_file") + 1].endswith("zero2.json")
    assert "--zero3_init_flag" not in zero2
    assert zero2[-3:] == ["-m", "lbdata.train.launch", str(job)]
    zero3 = accelerate_command(job, num_processes=8, deepspeed=deepspeed_config_path("zero3"), mixed_precision="bf16")
    assert zero3[zero3.index("--zero3_init_flag") + 1] == "true"
    ddp = accelerate_command(job, num_processes=4, deepspeed=None, mixed_precision="bf16")
    assert "--multi_gpu" in ddp and "--use_deepspeed" not in ddp
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("LBDATA_LAUNCHED", raising=False)
    assert needs_launch(2, None) and needs_launch(None, "zero2") and not needs_launch(1, None)
    monkeypatch.setenv("LOCAL_RANK", "0")  # inside accelerate/torchrun: never launch again
    assert not needs_launch(8, "zero3")


# ============================================================================ data (fast)


def test_grpo_data_from_a_jsonl_source_carries_image_instruction_and_gold(jsonl_source):
    from lbdata.prompts import format_instruction
    from lbdata.train.grpo import load_grpo_data

    ds, info = load_grpo_data(f"jsonl:{jsonl_source}", variant="solution_back")
    assert info["rows"] == len(ds) >= 3 and sum(info["skipped"].values()) >= 1  # bad rows counted, not lost
    row = ds[0]
    assert row["prompt"][0]["role"] == "user"
    assert row["prompt"][0]["content"].endswith(format_instruction("solution_back"))
    assert row["solution"] == row["answer"] and row["variant"] == "solution_back"
    assert len(row["images"]) == 1 and row["images"][0].size[0] > 0  # decoded PIL image
    assert json.loads(row["meta"]) == {"row": "a"}  # the source row's own meta, carried as JSON: no scene facts
    with pytest.raises(UsageError, match="endless"):
        load_grpo_data("synthetic", variant="semantic_back")


def test_grpo_data_carries_the_scene_facts_so_a_back_that_contradicts_the_figure_earns_no_format_reward(corpus):
    """From a synthetic source and from a synthetic corpus (whose rows carry no meta: it is drawn again from
    the problem id), the GRPO rows carry the problem's meta, and the format reward reads it as TRL hands it."""
    from lbdata.sources.synthetic import SyntheticSource, recover_meta
    from lbdata.train.grpo import load_grpo_data
    from lbdata.train.rewards import LookBackFormatReward
    from tests.test_rewards import figure_traces

    home, spec = corpus
    from_source, _ = load_grpo_data("synthetic:bar_chart", variant="semantic_back", limit=3)
    from_corpus, _ = load_grpo_data(spec, variant="semantic_back", home=str(home))
    source = SyntheticSource(seed=0)
    reward = LookBackFormatReward()
    checked = 0
    for ds in (from_source, from_corpus):
        assert ds.features["meta"].dtype == "string"
        for row in ds:
            index = int(row["problem_id"].rsplit("-", 1)[1])
            problem = source.row(index).problem
            assert json.loads(row["meta"]) == problem.meta  # the figure's own facts, nothing else
            if problem.meta["family"] != "bar_chart":
                continue
            good, bad = figure_traces(problem, index)
            columns = {k: [row[k]] * 2 for k in ds.column_names if k not in ("prompt", "images")}
            assert reward([good, bad], **columns) == [1.0, 0.0]
            assert reward([good, bad], **{**columns, "meta": [None, None]}) == [1.0, 1.0]  # without it: blind
            checked += 1
    assert checked >= 5
    png = source.row(0).images[0]
    assert recover_meta("synthetic:0-0", png) == source.row(0).problem.meta
    assert recover_meta("synthetic:0-0", png + b"x") is None  # another figure: no facts rather than wrong ones
    assert recover_meta("jsonl:0-0", png) is None


# ============================================================================ training output (fast)


def _state(step: int, max_steps: int):
    from types import SimpleNamespace

    return SimpleNamespace(is_world_process_zero=True, max_steps=max_steps, global_step=step, epoch=step / max_steps)


def test_monitor_logs_every_step_to_csv_draws_the_curve_and_prints_lines_not_redraws(tmp_path, capsys):
    from lbdata.train.monitor import TrainMonitor, read_log

    monitor = TrainMonitor(tmp_path, "grpo")
    monitor.on_train_begin(None, _state(0, 20), None)
    for step in range(1, 21):
        state = _state(step, 20)
        monitor.on_log(None, state, None, logs={
            "loss": 1.0 / step, "rewards/accuracy_reward/mean": 0.1, "rewards/look_back_format_reward/mean": step / 20,
            "look_back/trigger_rate": 0.5 + step / 40, "completions/mean_length": 200.0, "note": "text", "epoch": 0.1,
        })
        monitor.on_step_end(None, state, None)
    monitor.on_log(None, _state(20, 20), None, logs={"train_runtime": 9.0, "train_loss": 0.3})  # the run's summary
    monitor.on_train_end(None, _state(20, 20), None)

    rows = read_log(tmp_path)
    assert [r["step"] for r in rows] == list(range(1, 21))  # one row per logged step, not the summary
    assert rows[-1]["look_back/trigger_rate"] == 1.0 and rows[0]["rewards/look_back_format_reward/mean"] == 0.05
    assert "note" not in rows[0] and "train_runtime" not in rows[-1]
    assert (tmp_path / "train_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    err = capsys.readouterr().err  # stderr is not a terminal here: a line per tenth of the run, no redraws
    lines = [line for line in err.splitlines() if line.startswith("grpo step")]
    assert 5 <= len(lines) <= 11 and "\r" not in err
    assert lines[-1].startswith("grpo step 20/20") and "fmt 1.000" in lines[-1] and "back 1.000" in lines[-1]


def test_monitor_of_a_resumed_run_keeps_the_steps_logged_before_the_checkpoint(tmp_path, capsys):
    from types import SimpleNamespace

    from lbdata.train.monitor import TrainMonitor, read_log

    monitor = TrainMonitor(tmp_path, "sft")
    monitor.resumed_at = [2]
    history = [{"loss": 2.0, "step": 1, "epoch": 0.25}, {"loss": 1.5, "step": 2, "epoch": 0.5},
               {"train_runtime": 3.0, "step": 2}]
    monitor.on_train_begin(None, SimpleNamespace(is_world_process_zero=True, max_steps=4, global_step=2, epoch=0.5,
                                                 log_history=history), None)
    for step in (3, 4):
        monitor.on_log(None, _state(step, 4), None, logs={"loss": 1.0 / step})
    monitor.on_train_end(None, _state(4, 4), None)
    assert [(r["step"], r["loss"]) for r in read_log(tmp_path)] == [(1, 2.0), (2, 1.5), (3, 1 / 3), (4, 0.25)]
    err = capsys.readouterr().err
    assert "sft resumed at step 2/4" in err and "sft step 1/4" not in err and "sft step 3/4" in err
    assert (tmp_path / "train_curve.png").stat().st_size > 1000


def test_quiet_libraries_hides_what_asks_nothing_of_the_user_unless_verbose():
    script = textwrap.dedent(
        """
        import logging, sys, warnings
        from lbdata.train.monitor import quiet_libraries
        quiet_libraries(verbose=sys.argv[1] == "1")
        warnings.warn_explicit("`x` is deprecated", FutureWarning, "training_args.py", 1, module="transformers.training_args")
        logging.getLogger("DeepSpeed").addHandler(logging.StreamHandler())
        logging.getLogger("DeepSpeed").warning("Setting accelerator to CPU")
        logging.getLogger("DeepSpeed").error("a real DeepSpeed error")
        import transformers
        transformers.utils.logging.get_logger("transformers.modeling_utils").warning("a transformers notice")
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {v: subprocess.run([sys.executable, "-c", script, v], capture_output=True, text=True, env=env,
                              timeout=300, check=False) for v in ("0", "1")}
    quiet, verbose = runs["0"], runs["1"]
    assert quiet.returncode == 0 and verbose.returncode == 0, (quiet.stderr, verbose.stderr)
    assert "FutureWarning" not in quiet.stderr and "Setting accelerator" not in quiet.stderr
    assert "a transformers notice" not in quiet.stderr
    assert "a real DeepSpeed error" in quiet.stderr  # errors still show
    for text in ("FutureWarning", "Setting accelerator", "a transformers notice"):
        assert text in verbose.stderr, text


def test_regex_format_reward_pays_for_the_backs_lbdata_refuses():
    import re

    from lbdata.train.rewards import LookBackFormatReward, RegexFormatReward
    from tests.fake_openai_server import write_trace

    real = write_trace("semantic_back", "10")
    back = re.compile(r"<back>.*?</back>", re.DOTALL)
    empty = back.sub("<back> </back>", real)
    filler = back.sub("<back> Let me look back at the image to double-check everything. </back>", real)
    no_back = "<think> The bar reaches 10. </think> \\boxed{10}"
    texts = [real, empty, filler, no_back]
    assert RegexFormatReward()(texts) == [1.0, 1.0, 1.0, 0.0]
    assert LookBackFormatReward()(texts) == [1.0, 0.0, 0.0, 0.0]


def test_format_reward_option_is_checked():
    recipe = load_recipe("tiny-grpo", "grpo", {"format_reward": "regex"})
    assert recipe.options.format_reward == "regex"
    with pytest.raises(ConfigError, match="format_reward must be one of look_back, regex"):
        load_recipe("tiny-grpo", "grpo", {"format_reward": "lenient"})


# ============================================================================ tiny-model training (slow)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small synthetic corpus (scene teacher, offline): (home, NAME@VER)."""
    from lbdata.corpus import BuildConfig, build_corpus
    from lbdata.generate import GenerateConfig, generate

    home = tmp_path_factory.mktemp("train-home")
    generate(GenerateConfig(limit=40, seed=0), home / "runs" / "syn")
    result = build_corpus([home / "runs" / "syn"], "syn", BuildConfig(reflection_rate=1.0, test_size=0.1), home=home)
    return home, f"syn@{result.version}"


def _cli(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {"output": result.output}


@pytest.fixture(scope="module")
def sft_out(corpus, tiny_model_dir, tmp_path_factory) -> Path:
    home, spec = corpus
    out = tmp_path_factory.mktemp("sft") / "model"
    _cli("train", "sft", "--corpus", spec, "--home", str(home), "--model", str(tiny_model_dir),
         "--recipe", "tiny-sft", "--set", "max_steps=40", "--set", "logging_steps=5", "--out", str(out))
    return out


@pytest.mark.slow
def test_prepared_sft_masks_all_but_the_assistant_turn_and_keeps_every_image_token(corpus, tiny_model_dir, tmp_path):
    from lbdata.train.sft import SFTJob, prepare_sft, sequence_length

    home, spec = corpus
    job = SFTJob(corpus=spec, home=str(home), model=str(tiny_model_dir), recipe="tiny-sft", out=str(tmp_path / "o"))
    run = prepare_sft(job)
    trainer, processor = run.trainer, run.processor
    example = trainer.train_dataset[0]
    batch = trainer.data_collator([dict(example)])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    tok = processor.tokenizer
    trained = tok.decode(ids[labels != -100])
    trace = example["messages"][1]["content"][0]["text"]
    assert trained == trace + "<|im_end|>\n"  # exactly the assistant turn and its end of turn
    image_tokens = int((ids == processor.image_token_id).sum())
    assert image_tokens == int(batch["image_grid_thw"].prod(dim=-1).sum()) // 4 == 64  # 224x224 band, none cut
    assert sequence_length(example, processor) == len(ids)  # the max_length guard counts what the collator makes
    # the vision encoder is frozen, its merger (projector into the language model) is not
    visual = trainer.model.model.visual
    assert not any(p.requires_grad for p in visual.blocks.parameters())
    assert all(p.requires_grad for p in visual.merger.parameters())
    assert all(p.requires_grad for p in trainer.model.model.language_model.parameters())
    unfrozen = prepare_sft(job.model_copy(update={"overrides": {"freeze_vision_tower": False}}))
    assert all(p.requires_grad for p in unfrozen.trainer.model.model.visual.parameters())


@pytest.mark.slow
def test_max_length_drops_long_rows_instead_of_cutting_them(corpus, tiny_model_dir, tmp_path):
    from lbdata.train.sft import SFTJob, prepare_sft, sequence_length

    home, spec = corpus
    base = SFTJob(corpus=spec, home=str(home), model=str(tiny_model_dir), recipe="tiny-sft", out=str(tmp_path / "o"))
    full = prepare_sft(base)
    lengths = sorted(sequence_length(ex, full.processor) for ex in full.trainer.train_dataset)
    cut = lengths[len(lengths) // 2]
    half = prepare_sft(base.model_copy(update={"overrides": {"max_length": cut}}))
    kept = len(half.trainer.train_dataset)
    assert kept == sum(n <= cut for n in lengths) and half.record["rows"]["dropped"] == len(lengths) - kept
    with pytest.raises(ConfigError, match="no semantic_back/train rows"):
        prepare_sft(base.model_copy(update={"overrides": {"max_length": 50}}))


@pytest.mark.slow
def test_tiny_sft_loss_falls_and_writes_model_processor_config_and_card(sft_out, corpus):
    record = json.loads((sft_out / "lbdata_train.json").read_text())
    metrics = record["metrics"]
    assert metrics["last_logged_loss"] < 0.8 * metrics["first_logged_loss"], metrics
    assert record["data"] == corpus[1] and record["config"] == "semantic_back" and record["rows"]["train"] > 0
    for name in ("config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
                 "train_config.yaml", "README.md"):
        assert (sft_out / name).is_file(), name
    resolved = yaml.safe_load((sft_out / "train_config.yaml").read_text())
    assert resolved["max_steps"] == 40 and resolved["learning_rate"] == 2e-3  # recipe + CLI overrides
    assert load_recipe(sft_out / "train_config.yaml", "sft").values == resolved  # itself a recipe
    card = (sft_out / "README.md").read_text()
    assert corpus[1] in card and "tiny-sft.yaml" in card and "lbdata eval --model" in card
    assert "last_logged_loss" in card and "](train_curve.png)" in card
    from lbdata.train.monitor import read_log

    rows = read_log(sft_out)
    assert [r["step"] for r in rows if "loss" in r] == [5, 10, 15, 20, 25, 30, 35, 40]  # logging_steps=5
    assert (sft_out / "train_curve.png").stat().st_size > 1000


@pytest.mark.slow
def test_sft_checkpoint_reloads_in_a_fresh_process_and_generates_from_an_image(sft_out):
    script = textwrap.dedent(
        """
        import json, sys
        import lbdata.train.processor  # registers the image-only processor
        from PIL import Image
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = sys.argv[1]
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path).eval()
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many red objects?"}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=[[Image.new("RGB", (300, 200), "red")]], return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
        new = out[0, inputs["input_ids"].shape[1]:]
        print(json.dumps({"processor": type(processor).__name__, "pixels": list(inputs["pixel_values"].shape),
                          "image_tokens": int((inputs["input_ids"] == processor.image_token_id).sum()),
                          "new_tokens": len(new), "text": processor.tokenizer.decode(new)}))
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script, str(sft_out)], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["processor"] == "LbdataQwen2_5_VLProcessor"
    assert result["image_tokens"] > 0 and result["pixels"][0] == 4 * result["image_tokens"]
    assert result["new_tokens"] > 0


@pytest.mark.slow
def test_grpo_from_the_sft_checkpoint_logs_both_rewards_and_saves(sft_out, corpus, tmp_path):
    home, spec = corpus
    out = tmp_path / "grpo"
    result = _cli("train", "grpo", "--data", spec, "--home", str(home), "--model", str(sft_out),
                  "--recipe", "tiny-grpo", "--set", "max_steps=3", "--out", str(out))
    assert "rewards    accuracy" in result["output"]
    record = json.loads((out / "lbdata_train.json").read_text())
    metrics = record["metrics"]
    for key in ("rewards/accuracy_reward/mean", "rewards/look_back_format_reward/mean", "look_back/trigger_rate",
                "reward"):
        assert key in metrics and 0.0 <= metrics[key] <= 1.1, (key, metrics)
    assert record["rewards"] == ["accuracy_reward", "look_back_format_reward"]
    assert record["reward_weights"] == [1.0, 0.1] and record["rows"]["train"] == 36  # one prompt per problem
    for name in ("model.safetensors", "config.json", "processor_config.json", "README.md", "train_config.yaml",
                 "train_log.csv", "train_curve.png"):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "look_back_format_reward" in card and "](train_curve.png)" in card and "train_log.csv" in card
    from lbdata.train.monitor import read_log

    steps = read_log(out)
    assert [r["step"] for r in steps] == [1, 2, 3]  # every step, with its reward means and trigger rate
    assert all(0.0 <= r[key] <= 1.0 for r in steps for key in ("look_back/trigger_rate",
               "rewards/accuracy_reward/mean", "rewards/look_back_format_reward/mean"))
    assert "{'loss'" not in result["output"] and "FutureWarning" not in result["output"]
    assert "grpo step 3/3" in result["output"]  # the progress line (stderr is no terminal here)


@pytest.mark.slow
def test_grpo_image_token_types_stay_aligned_with_prompts_of_different_lengths(sft_out, corpus, tmp_path, monkeypatch):
    """Two prompts per step, of different lengths: the M-RoPE token types must sit on the image tokens."""
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

    from lbdata.train.grpo import GRPOJob, train_grpo

    checked: list[int] = []
    original = qwen.Qwen2_5_VLModel.get_rope_index

    def checking(self, input_ids, mm_token_type_ids=None, *args, attention_mask=None, **kwargs):
        if mm_token_type_ids is not None:
            image = input_ids == self.config.image_token_id
            assert ((mm_token_type_ids == 1) == image).all(), "mm_token_type_ids misaligned with the image tokens"
            checked.append(int(input_ids.shape[0]))
        return original(self, input_ids, mm_token_type_ids, *args, attention_mask=attention_mask, **kwargs)

    monkeypatch.setattr(qwen.Qwen2_5_VLModel, "get_rope_index", checking)
    home, spec = corpus
    train_grpo(GRPOJob(data=spec, home=str(home), model=str(sft_out), recipe="tiny-grpo", out=str(tmp_path / "g"),
                       overrides={"max_steps": 2, "max_completion_length": 16, "disable_tqdm": True}))
    assert checked and max(checked) == 8  # 2 prompts x 4 generations in one forward pass


@pytest.mark.slow
def test_zero2_sft_in_two_processes_under_accelerate(corpus, tiny_model_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    probe = subprocess.run(
        [sys.executable, "-c", "import deepspeed; from deepspeed.accelerator import get_accelerator; "
                               "print(get_accelerator().device_name())"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert probe.returncode == 0 and probe.stdout.strip().splitlines()[-1] == "cpu", probe.stderr[-2000:]
    home, spec = corpus
    out = tmp_path / "zero2"
    cmd = [sys.executable, "-m", "lbdata.cli", "train", "sft", "--corpus", spec, "--home", str(home), "--model",
           str(tiny_model_dir), "--recipe", "tiny-sft", "--set", "max_steps=4", "--set", "logging_steps=1",
           "--num-processes", "2", "--deepspeed", "zero2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    record = json.loads((out / "lbdata_train.json").read_text())
    assert record["processes"] == 2 and record["deepspeed"] == "zero2"
    assert record["metrics"]["train_loss"] > 0 and record["metrics"]["last_logged_loss"] > 0
    assert (out / "model.safetensors").is_file() and (out / "processor_config.json").is_file()
    job = json.loads((out / "lbdata_job.json").read_text())
    assert job["kind"] == "sft" and job["job"]["num_processes"] == 2
    assert "model      " in proc.stdout


# ============================================================================ resume after a kill (slow)


def _killed_then_resumed(cmd: list[str], out: Path, kind: str, *, save_steps: int, max_steps: int, tmp_path: Path):
    """Run ``cmd`` until its first checkpoint is whole, SIGKILL it, run it again; return the second run and its
    record. (A third run, refused because the run is finished, is tested in test_resume.py.)"""
    import signal
    import time

    from lbdata.train.resume import checkpoint_step, last_checkpoint

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    first_log = tmp_path / "first.log"
    with first_log.open("wb") as log:
        first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 240
        while not (out / f"checkpoint-{save_steps}" / "trainer_state.json").is_file():
            assert first.poll() is None, first_log.read_text()[-3000:]
            assert time.monotonic() < deadline, first_log.read_text()[-3000:]
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -signal.SIGKILL and not (out / "lbdata_train.json").exists()
    resumed_at = checkpoint_step(last_checkpoint(out))
    assert save_steps <= resumed_at < max_steps

    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert second.returncode == 0, (second.stdout[-2000:], second.stderr[-3000:])
    assert f"{kind} resumed at step {resumed_at}/{max_steps}" in second.stderr
    ran = [int(line.split()[2].split("/")[0]) for line in second.stderr.splitlines() if line.startswith(f"{kind} step ")]
    assert ran == list(range(resumed_at + 1, max_steps + 1))  # only the steps after the checkpoint ran again
    record = json.loads((out / "lbdata_train.json").read_text())
    assert record["global_step"] == max_steps and record["resumed_at"] == [resumed_at]
    assert f"resumed    at step {resumed_at} of {max_steps}" in second.stdout
    from lbdata.train.monitor import read_log

    steps = [r["step"] for r in read_log(out) if "loss" in r]
    assert steps == list(range(1, max_steps + 1))  # the log of the steps before the kill is kept
    return second, record


@pytest.mark.slow
def test_sft_killed_mid_run_resumes_from_its_checkpoint_when_run_again(corpus, tiny_model_dir, tmp_path):
    home, spec = corpus
    out = tmp_path / "sft"
    cmd = [sys.executable, "-m", "lbdata.cli", "train", "sft", "--corpus", spec, "--home", str(home), "--model",
           str(tiny_model_dir), "--recipe", "tiny-sft", "--set", "max_steps=12", "--set", "logging_steps=1",
           "--set", "save_strategy=steps", "--set", "save_steps=3", "--out", str(out)]
    _, record = _killed_then_resumed(cmd, out, "sft", save_steps=3, max_steps=12, tmp_path=tmp_path)
    # the resumed steps are the steps of an uninterrupted run: weights, optimizer, data order and RNG restored
    # (the trainer's own resume would leave the base weights of Qwen2.5-VL in place: transformers#43701)
    reference = subprocess.run([*cmd[:-1], str(tmp_path / "reference")], capture_output=True, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300, check=False)
    assert reference.returncode == 0, reference.stderr[-3000:]
    from lbdata.train.monitor import read_log

    losses = {r["step"]: r["loss"] for r in read_log(out) if "loss" in r}
    expected = {r["step"]: r["loss"] for r in read_log(tmp_path / "reference") if "loss" in r}
    assert losses == pytest.approx(expected, rel=1e-3), (losses, expected)
    assert record["metrics"]["last_logged_loss"] < record["metrics"]["first_logged_loss"]


@pytest.mark.slow
def test_grpo_killed_mid_run_resumes_from_its_checkpoint_when_run_again(corpus, tiny_model_dir, tmp_path):
    home, spec = corpus
    out = tmp_path / "grpo"
    cmd = [sys.executable, "-m", "lbdata.cli", "train", "grpo", "--data", spec, "--home", str(home), "--model",
           str(tiny_model_dir), "--recipe", "tiny-grpo", "--set", "max_steps=4", "--set", "max_completion_length=16",
           "--set", "save_strategy=steps", "--set", "save_steps=2", "--out", str(out)]
    _, record = _killed_then_resumed(cmd, out, "grpo", save_steps=2, max_steps=4, tmp_path=tmp_path)
    assert "rewards/accuracy_reward/mean" in record["metrics"]
