"""Exports, each loaded the way its consumer loads it: TRL (with trl.data_utils and the tiny processor),
LLaMA-Factory (its sharegpt + dataset_info rules), EasyR1 (its <image>-splitting loader rules), verl
(RLHFDataset's message building, re-stated). The consumers' own code runs in benchmarks/consumers.py."""

from __future__ import annotations

import json

import datasets
import pytest
from PIL import Image
from test_corpus import TEACHER, image_bytes, make_run, trace_text

from lbdata.corpus import BuildConfig, build_corpus, load_corpus
from lbdata.errors import CorpusError, UsageError
from lbdata.export import EXPORT_FILE, export_corpus
from lbdata.hashing import sha256_bytes
from lbdata.ledger import Ledger
from lbdata.records import ImageRef, Problem, Trace, Verdict
from lbdata.train.rewards import accuracy_reward, look_back_format_reward, verl_compute_score
from lbdata.validate import ValidationConfig


@pytest.fixture()
def corpus(home, tmp_path):
    """A two-image corpus with both configs, train and test."""
    run = make_run(tmp_path / "run", 24, n_images=2)
    res = build_corpus([run], "ex", BuildConfig(test_size=0.25), home=home)
    return f"ex@{res.version}", res.manifest


def load_parquet(path):
    return datasets.load_dataset("parquet", data_files={"train": str(path)}, split="train")


def test_trl_sft_export_feeds_trl_helpers(corpus, tmp_path):
    from trl.data_utils import is_conversational, prepare_multimodal_messages

    spec, manifest = corpus
    res = export_corpus(spec, "trl-sft", tmp_path / "sft")
    for cfg in ("semantic_back", "solution_back"):
        for split in ("train", "test"):
            ds = load_parquet(tmp_path / "sft" / cfg / f"{split}.parquet")
            assert ds.column_names == ["messages", "images"]
            assert isinstance(ds.features["images"], datasets.List)
            assert isinstance(ds.features["images"].feature, datasets.Image)
            assert len(ds) == manifest["counts"][cfg][split]["rows"] == res.rows[cfg][split]
            ex = ds[0]
            assert is_conversational(ex)
            assert all(isinstance(im, Image.Image) for im in ex["images"]) and len(ex["images"]) == 2
            filled = prepare_multimodal_messages(ex["messages"], images=ex["images"])
            assert [p["image"] for p in filled[0]["content"] if p["type"] == "image"] == ex["images"]
    assert json.loads((tmp_path / "sft" / EXPORT_FILE).read_text())["format"] == "trl-sft"


def test_trl_sft_export_through_the_vlm_collator_with_the_tiny_processor(corpus, tmp_path, tiny_model_dir):
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from lbdata.train.processor import load_processor

    spec, _ = corpus
    export_corpus(spec, "trl-sft", tmp_path / "sft")
    ds = load_parquet(tmp_path / "sft" / "semantic_back" / "train.parquet")
    processor = load_processor(tiny_model_dir)
    collator = DataCollatorForVisionLanguageModeling(processor, assistant_only_loss=True)
    examples = [ds[0], ds[1]]
    traces = [ex["messages"][1]["content"][0]["text"] for ex in examples]
    batch = collator(examples)
    pad_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size ** 2
    assert batch["image_grid_thw"].shape[0] == 4  # two images per example
    assert int((batch["input_ids"] == pad_id).sum()) == int(batch["image_grid_thw"].prod(-1).sum()) // merge
    for i, trace in enumerate(traces):
        trained = batch["input_ids"][i][batch["labels"][i] != -100]
        assert processor.tokenizer.decode(trained).startswith(trace)


def test_trl_grpo_export_is_prompt_only_with_solution(corpus, tmp_path, tiny_model_dir):
    from trl.data_utils import apply_chat_template, is_conversational, prepare_multimodal_messages
    from trl.rewards import accuracy_reward

    from lbdata.train.processor import load_processor

    spec, manifest = corpus
    export_corpus(spec, "trl-grpo", tmp_path / "grpo")
    processor = load_processor(tiny_model_dir)
    sft = load_corpus(spec, config="solution_back", split="train")
    ds = load_parquet(tmp_path / "grpo" / "solution_back" / "train.parquet")
    assert {"prompt", "images", "answer", "solution"} <= set(ds.column_names)
    assert len(ds) == len(set(sft["problem_id"])) == len(set(ds["problem_id"]))
    gold = dict(zip(sft["problem_id"], sft["answer"], strict=True))
    trace = dict(zip(sft["problem_id"], sft["trace"], strict=True))
    for ex in ds:
        assert is_conversational(ex) and [m["role"] for m in ex["prompt"]] == ["user"]
        assert ex["answer"] == ex["solution"] == gold[ex["problem_id"]]
        filled = prepare_multimodal_messages(ex["prompt"], images=ex["images"])
        text = apply_chat_template({"prompt": filled}, processor)["prompt"]
        assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
        assert text.endswith("<|im_start|>assistant\n")
        completion = [[{"role": "assistant", "content": trace[ex["problem_id"]]}]]
        assert accuracy_reward(completion, [ex["solution"]]) == [1.0]


def test_llamafactory_export_meets_sharegpt_rules(corpus, tmp_path):
    spec, manifest = corpus
    out = tmp_path / "lf"
    export_corpus(spec, "llamafactory", out)
    info = json.loads((out / "dataset_info.json").read_text())
    assert set(info) == {f"ex_{c}_{s}" for c in ("semantic_back", "solution_back") for s in ("train", "test")}
    entry = info["ex_semantic_back_train"]
    assert entry == {
        "file_name": "semantic_back_train.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }
    for name, e in info.items():
        records = json.loads((out / e["file_name"]).read_text())
        cfg, split = name[len("ex_"):].rsplit("_", 1)
        assert len(records) == manifest["counts"][cfg][split]["rows"]
        for rec in records:
            msgs = rec[e["columns"]["messages"]]
            assert [m[e["tags"]["role_tag"]] for m in msgs] == ["user", "assistant"]
            n_tokens = sum(m[e["tags"]["content_tag"]].count("<image>") for m in msgs)
            assert n_tokens == len(rec["images"]) == 2
            assert msgs[0]["content"].startswith("<image><image>")
            for p in rec["images"]:  # paths resolve relative to dataset_dir
                with Image.open(out / p) as im:
                    assert im.size == (40, 30)
            assert msgs[1]["content"].endswith("}")


def test_easyr1_export_splits_on_image_tokens(corpus, tmp_path):
    import jinja2

    spec, _ = corpus
    out = tmp_path / "r1"
    export_corpus(spec, "easyr1", out)
    ds = load_parquet(out / "semantic_back" / "train.parquet")
    assert {"images", "problem", "answer"} <= set(ds.column_names)
    assert len(set(ds["id"])) == len(ds)
    for ex in ds:
        pieces = ex["problem"].split("<image>")  # EasyR1's loader inserts one image slot per split point
        assert len(pieces) == len(ex["images"]) + 1 == 3
        assert all(isinstance(im, Image.Image) for im in ex["images"])
        assert ex["answer"]
    template = jinja2.Template((out / "format_prompt.jinja").read_text())
    assert template.render(content=ds[0]["problem"]) == ds[0]["problem"]


def test_contract_break_names_the_row(home, tmp_path):
    run = make_run(tmp_path / "run", 6, question_of=lambda i: f"<image> What is bar C in chart {i}?")
    res = build_corpus([run], "brk", BuildConfig(test_size=0.0), home=home)
    with pytest.raises(CorpusError, match=r"breaks the easyr1 contract: 2 <image> placeholders .* for 1 images"):
        export_corpus(f"brk@{res.version}", "easyr1", tmp_path / "r1")
    with pytest.raises(CorpusError, match="breaks the llamafactory contract"):
        export_corpus(f"brk@{res.version}", "llamafactory", tmp_path / "lf")
    export_corpus(f"brk@{res.version}", "trl-sft", tmp_path / "sft")  # TRL counts image blocks, not text


def test_bad_export_requests(corpus, tmp_path):
    spec, _ = corpus
    with pytest.raises(UsageError, match="unknown export format 'csv'"):
        export_corpus(spec, "csv", tmp_path / "x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        export_corpus(spec, "trl-sft", tmp_path / "busy")
    with pytest.raises(CorpusError, match="known versions"):
        export_corpus("ex@00000000", "trl-sft", tmp_path / "y")


def test_schema_check_refuses_paths_instead_of_images(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lbdata.export import check_parquet_schema

    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"messages": [[{"role": "user", "content": []}]], "images": [["a.png"]]}), path)
    with pytest.raises(CorpusError, match=r"not List\(Image\(\)\)"):
        check_parquet_schema(path, "trl-sft")
    with pytest.raises(CorpusError, match="expected"):
        check_parquet_schema(path, "easyr1")


# ---------------------------------------------------------------------------- rewards read the RL exports
def reward_columns(ds, i: int) -> dict:
    """What TRL hands a reward function for row ``i``: every column but the prompt and images, as lists."""
    return {k: [ds[i][k]] for k in ds.column_names if k not in ("prompt", "images")}


def test_grpo_export_columns_make_lbdata_rewards_judge_solution_back_rows_by_their_rules(corpus, tmp_path):
    spec, _ = corpus
    export_corpus(spec, "trl-grpo", tmp_path / "grpo")
    for cfg in ("semantic_back", "solution_back"):
        ds = load_parquet(tmp_path / "grpo" / cfg / "train.parquet")
        assert ds.column_names[-4:] == ["question", "choices", "variant", "meta"]
        for i in range(len(ds)):
            columns = reward_columns(ds, i)
            assert columns["variant"] == [cfg] and columns["question"][0].startswith("What is the height")
            good = trace_text(cfg, ds[i]["answer"])
            assert look_back_format_reward([good], **columns) == [1.0]
            assert accuracy_reward([good], **columns) == [1.0]
    # the variant column is what makes the difference: a solution-back trace fails semantic-back rules
    ds = load_parquet(tmp_path / "grpo" / "solution_back" / "train.parquet")
    columns = reward_columns(ds, 0)
    good = trace_text("solution_back", ds[0]["answer"])
    assert look_back_format_reward([good], **{**columns, "variant": ["semantic_back"]}) == [0.0]


def test_grpo_and_verl_exports_carry_the_scene_facts_the_format_reward_checks_backs_against(home, tmp_path):
    """A synthetic corpus: trl-grpo's meta column and verl's extra_info.meta make a back that contradicts the
    figure earn no format reward; EasyR1 hands its reward no row data, so its layout carries none."""
    from lbdata.generate import GenerateConfig, generate
    from lbdata.sources.synthetic import SyntheticSource
    from tests.test_rewards import figure_traces

    generate(GenerateConfig(limit=18, seed=0), tmp_path / "syn")
    res = build_corpus([tmp_path / "syn"], "syn", BuildConfig(test_size=0.0), home=home)
    spec = f"syn@{res.version}"
    for fmt in ("trl-grpo", "verl", "easyr1"):
        export_corpus(spec, fmt, tmp_path / fmt)
    grpo = load_parquet(tmp_path / "trl-grpo" / "semantic_back" / "train.parquet")
    verl = load_parquet(tmp_path / "verl" / "semantic_back" / "train.parquet")
    assert "meta" not in load_parquet(tmp_path / "easyr1" / "semantic_back" / "train.parquet").column_names
    source = SyntheticSource(seed=0)
    checked = 0
    for i in range(len(grpo)):
        problem = source.row(int(grpo[i]["problem_id"].rsplit("-", 1)[1])).problem
        assert json.loads(grpo[i]["meta"]) == json.loads(verl[i]["extra_info"]["meta"]) == problem.meta
        if problem.meta["family"] != "bar_chart":
            continue
        good, bad = figure_traces(problem, i)
        assert look_back_format_reward([good, bad], **{k: v * 2 for k, v in reward_columns(grpo, i).items()}) == [1.0, 0.0]
        truth, info = verl[i]["reward_model"]["ground_truth"], verl[i]["extra_info"]
        assert [verl_compute_score("syn", t, truth, info)["format"] for t in (good, bad)] == [1.0, 0.0]
        checked += 1
    assert checked >= 2


@pytest.fixture()
def choice_corpus(home, tmp_path):
    """Multiple-choice problems whose gold is a letter (B: the second option)."""
    run = tmp_path / "mc"
    verdicts = []
    with Ledger.create(run) as ledger:
        ledger.write_config({"config": {"source": "synthetic", "teacher": "scene"}})
        for i in range(8):
            data = image_bytes(500 + i)
            problem = Problem(id=f"mc:{i}", images=[ImageRef(sha256=sha256_bytes(data), ext="png", width=40,
                                                                  height=30)],
                              question=f"Which value is the height of bar C in chart {i}?",
                              choices=[str(i + 2), f"{i + 11} meters", str(i + 30), str(i + 40)], answer="B",
                              source="synthetic")
            ledger.put_problem(problem, [data])
            for variant in ("semantic_back", "solution_back"):
                tid = Trace.make_id(problem_id=problem.id, variant=variant, mode="write", teacher=TEACHER,
                                    prompt_hash="p0")
                ledger.put_trace(Trace(id=tid, problem_id=problem.id, variant=variant, teacher=TEACHER,
                                       prompt_hash="p0", text=trace_text(variant, "B")))
                verdicts.append(Verdict(trace_id=tid, accepted=True, config_hash=ValidationConfig().config_hash))
        ledger.put_verdicts(verdicts)
    res = build_corpus([run], "mc", BuildConfig(test_size=0.0), home=home)
    return f"mc@{res.version}"


@pytest.mark.parametrize("fmt", ["trl-grpo", "easyr1", "verl"])
def test_a_choice_answered_with_its_option_text_earns_accuracy(choice_corpus, tmp_path, fmt):
    export_corpus(choice_corpus, fmt, tmp_path / fmt)
    ds = load_parquet(tmp_path / fmt / "solution_back" / "train.parquet")
    assert len(ds) == 8
    for row in ds:
        info = row["extra_info"] if fmt == "verl" else row
        gold = row["reward_model"]["ground_truth"] if fmt == "verl" else row["answer"]
        n = int(info["question"].rsplit(" ", 1)[1].rstrip("?"))
        assert gold == "B" and info["choices"][1] == f"{n + 11} meters"
        said_text = trace_text("solution_back", f"{n + 11} meters")
        said_wrong = trace_text("solution_back", str(n + 30))
        if fmt == "verl":
            assert verl_compute_score(row["data_source"], said_text, gold, info)["acc"] == 1.0
            assert verl_compute_score(row["data_source"], said_wrong, gold, info)["acc"] == 0.0
        else:
            columns = {"solution": [gold], "choices": [info["choices"]]}
            assert accuracy_reward([said_text, said_wrong], **{k: v * 2 for k, v in columns.items()}) == [1.0, 0.0]


def test_verl_export_builds_rlhfdataset_messages(corpus, tmp_path):
    """The rules of verl's RLHFDataset._build_messages and its reward call, re-stated on the export."""
    import re

    spec, manifest = corpus
    res = export_corpus(spec, "verl", tmp_path / "verl")
    for cfg in ("semantic_back", "solution_back"):
        for split in ("train", "test"):
            ds = load_parquet(tmp_path / "verl" / cfg / f"{split}.parquet")
            assert ds.column_names == ["data_source", "prompt", "images", "ability", "reward_model", "extra_info"]
            assert len(ds) == res.rows[cfg][split] == len(set(load_corpus(spec, config=cfg, split=split)["problem_id"]))
            assert [r["index"] for r in ds["extra_info"]] == list(range(len(ds)))
            for row in ds:
                assert row["data_source"] == f"ex/{cfg}"
                assert row["reward_model"]["style"] == "rule"
                assert row["extra_info"]["split"] == split and row["extra_info"]["variant"] == cfg
                (message,) = row["prompt"]
                segments = [x for x in re.split("(<image>|<video>|<audio>)", message["content"]) if x]
                assert segments[:2] == ["<image>", "<image>"] and len(segments) == 3
                assert all(isinstance(im, Image.Image) for im in row["images"]) and len(row["images"]) == 2
                good = trace_text(cfg, row["reward_model"]["ground_truth"])
                score = verl_compute_score(row["data_source"], good, row["reward_model"]["ground_truth"],
                                           row["extra_info"])
                assert score == {"score": 1.1, "acc": 1.0, "format": 1.0}
                wrong = trace_text(cfg, "999")
                assert verl_compute_score(row["data_source"], wrong, "1", row["extra_info"])["acc"] == 0.0


def test_verl_contract_break_names_the_row(home, tmp_path):
    run = make_run(tmp_path / "run", 4, question_of=lambda i: f"<image> What is bar C in chart {i}?")
    res = build_corpus([run], "brk", BuildConfig(test_size=0.0), home=home)
    with pytest.raises(CorpusError, match=r"breaks the verl contract: 2 <image> placeholders in prompt for 1 images"):
        export_corpus(f"brk@{res.version}", "verl", tmp_path / "v")


def test_parquet_metadata_is_in_the_spelling_datasets_3_reads(corpus, tmp_path):
    """No `List` type in the metadata (datasets 3.x: "Feature type 'List' not found"), same features back."""
    import pyarrow.parquet as pq

    from lbdata.export import FORMATS, _features, legacy_feature_dict

    spec, _ = corpus
    for fmt in FORMATS:
        if fmt == "llamafactory":
            continue
        export_corpus(spec, fmt, tmp_path / fmt)
        path = tmp_path / fmt / "semantic_back" / "train.parquet"
        meta = json.loads(pq.read_schema(path).metadata[b"huggingface"])
        text = json.dumps(meta)
        assert '"List"' not in text and '"Sequence"' in text
        assert datasets.Features.from_dict(meta["info"]["features"]) == _features(fmt)
        assert load_parquet(path).features == _features(fmt)
    assert legacy_feature_dict(datasets.List({"a": datasets.Value("int32")})) == [{"a": {"dtype": "int32",
                                                                                           "_type": "Value"}}]


@pytest.mark.slow
def test_the_consumers_read_every_export_with_their_own_code():
    """benchmarks/consumers.py with the venvs already built (building them takes about 5 GB and minutes)."""
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "consumers.py"
    spec = importlib.util.spec_from_file_location("consumers", script)
    consumers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(consumers)
    ready = [name for name in consumers.VENVS if consumers.venv_ready(name)]
    if not ready:
        pytest.skip(f"no consumer venv under {consumers.venv_root()} (LBDATA_CONSUMER_VENVS); build them once with "
                    "`python benchmarks/consumers.py --build-venvs`")
    done = subprocess.run([sys.executable, str(script), "--no-build", "--only", ",".join([*ready, "trl"]),
                           "--limit", "8"], capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    table = done.stdout.split("\n-----", 1)[1]
    assert "FAIL" not in table and table.count(" pass ") >= 3
