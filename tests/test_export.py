"""Exports, each loaded the way its consumer loads it: TRL (with trl.data_utils and the tiny processor),
LLaMA-Factory (its sharegpt + dataset_info rules), EasyR1 (its <image>-splitting loader rules)."""

from __future__ import annotations

import json

import datasets
import pytest
from PIL import Image
from test_corpus import make_run

from lbdata.corpus import BuildConfig, build_corpus, load_corpus
from lbdata.errors import CorpusError, UsageError
from lbdata.export import EXPORT_FILE, export_corpus


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
