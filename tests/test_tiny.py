"""The tiny offline Qwen2.5-VL: builder, image-only processor, pixel policy, and serving it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lbdata.errors import ConfigError, UsageError
from lbdata.images import fit_pixels, resize_image

LOOK_BACK_ANSWER = (
    "<think> The side marked 6 is the base, so the area is \\frac{1}{2} \\times 6 \\times 4 = 12. </think> "
    "<back> Looking at the image again, the height is 4 and the right angle is at C. </back> "
    "<think> Both values match, so the area stays 12. </think> \\boxed{12}"
)


def noise_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    channels = 4 if mode == "RGBA" else 3
    pixels = np.random.RandomState(seed).randint(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def run_python(code: str, timeout: int = 300) -> str:
    """Run ``code`` in a fresh interpreter (nothing registered yet) and return its stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def expected_grid(width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int, int]:
    """Qwen2-VL's grid: one temporal step, sides resized to multiples of 28, 14-pixel patches."""
    new_width, new_height = fit_pixels(width, height, min_pixels, max_pixels, factor=28)
    return 1, new_height // 14, new_width // 14


# --------------------------------------------------------------------------- pixel policy


def test_fit_pixels_is_qwen2_vl_smart_resize():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    sizes = [
        (1, 1),
        (27, 29),
        (28, 28),
        (100, 37),
        (448, 448),
        (640, 480),
        (1920, 1080),
        (50, 3000),
        (4000, 21),
    ]
    bands = [
        (56 * 56, 448 * 448),
        (56 * 56, 28 * 28 * 1280),
        (256 * 28 * 28, 512 * 28 * 28),
        (28 * 28, 28 * 28),
    ]
    for width, height in sizes:
        for low, high in bands:
            want_h, want_w = smart_resize(height, width, factor=28, min_pixels=low, max_pixels=high)
            assert fit_pixels(width, height, low, high) == (want_w, want_h), (width, height, low, high)


def test_fit_pixels_rejects_what_cannot_be_resized():
    with pytest.raises(UsageError, match="aspect ratio"):
        fit_pixels(10_000, 10, 56 * 56, 448 * 448)
    with pytest.raises(UsageError, match="pixel band"):
        fit_pixels(100, 100, 448 * 448, 56 * 56)
    with pytest.raises(UsageError, match="positive"):
        fit_pixels(0, 100, 56 * 56, 448 * 448)


def test_resize_image_lands_in_the_band_and_whitens_transparency():
    image = resize_image(Image.new("RGBA", (1000, 700), (0, 0, 0, 0)), 56 * 56, 448 * 448)
    assert image.mode == "RGB"
    assert image.size == fit_pixels(1000, 700, 56 * 56, 448 * 448)
    assert image.width % 28 == 0 and image.height % 28 == 0 and image.width * image.height <= 448 * 448
    assert image.getpixel((5, 5)) == (255, 255, 255)


# --------------------------------------------------------------------------- builder


def test_same_seed_same_files_other_seed_other_weights(tiny_model_dir, tmp_path):
    from lbdata.train.tiny import build_tiny_model

    again = tmp_path / "again"  # built in another process: nothing may depend on process state
    run_python(f"from lbdata.train.tiny import build_tiny_model; build_tiny_model({str(again)!r}, seed=0)")
    other = build_tiny_model(tmp_path / "other", seed=1)
    first = file_hashes(tiny_model_dir)
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= first.keys()
    assert file_hashes(again) == first
    other_hashes = file_hashes(other)
    assert other_hashes["model.safetensors"] != first["model.safetensors"]
    assert other_hashes["tokenizer.json"] == first["tokenizer.json"]


def test_builder_refuses_a_directory_that_is_not_a_tiny_model(tiny_model_dir, tmp_path):
    from lbdata.train.tiny import build_tiny_model

    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not empty"):
        build_tiny_model(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_model_is_small_and_ids_match_the_tokenizer(tiny_model_dir):
    from lbdata.train.tiny import SPECIAL_TOKENS, parameter_count

    config = json.loads((tiny_model_dir / "config.json").read_text())
    tokenizer = json.loads((tiny_model_dir / "tokenizer.json").read_text())
    ids = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    assert set(SPECIAL_TOKENS) <= ids.keys()
    assert config["image_token_id"] == ids["<|image_pad|>"]
    assert config["video_token_id"] == ids["<|video_pad|>"]
    assert config["vision_start_token_id"] == ids["<|vision_start|>"]
    assert config["vision_end_token_id"] == ids["<|vision_end|>"]
    assert config["eos_token_id"] == ids["<|im_end|>"]
    assert 1000 <= config["vocab_size"] <= 8192
    assert 300_000 < parameter_count(tiny_model_dir) < 5_000_000


# --------------------------------------------------------------------------- processor


def test_auto_processor_round_trips_in_a_fresh_process(tiny_model_dir):
    out = run_python(
        "import json, lbdata.train.processor\n"
        "from transformers import AutoProcessor\n"
        f"p = AutoProcessor.from_pretrained({str(tiny_model_dir)!r})\n"
        "size = p.image_processor.size\n"
        "print(json.dumps([type(p).__name__, type(p.image_processor).__name__,\n"
        "                  [size.shortest_edge, size.longest_edge]]))\n"
    )
    processor, image_processor, size = json.loads(out.strip().splitlines()[-1])
    assert processor == "LbdataQwen2_5_VLProcessor"
    assert image_processor == "LbdataQwen2VLImageProcessor"
    assert size == [56 * 56, 448 * 448]


def test_without_lbdata_and_torchvision_the_stock_processor_cannot_load_and_the_check_catches_a_tokenizer(
    tiny_model_dir,
):
    # Why the registration exists: stock Qwen2_5_VLProcessor needs a video processor, i.e. torchvision.
    out = run_python(
        "from transformers import AutoProcessor\n"
        "try:\n"
        f"    print(type(AutoProcessor.from_pretrained({str(tiny_model_dir)!r})).__name__)\n"
        "except ImportError as exc:\n"
        "    print('ImportError', 'Torchvision' in str(exc))\n"
    )
    assert out.strip().splitlines()[-1] in ("ImportError True", "Qwen2TokenizerFast", "TokenizersBackend")

    from transformers import AutoTokenizer

    from lbdata.train.processor import check_processor

    with pytest.raises(ConfigError, match="import lbdata.train.processor"):
        check_processor(AutoTokenizer.from_pretrained(str(tiny_model_dir)), tiny_model_dir)


def test_saved_files_name_stock_classes_in_spellings_transformers_4_and_5_read(tiny_model_dir):
    from lbdata.train.tiny import TinyModelConfig

    texts = {p.name: p.read_text() for p in tiny_model_dir.glob("*.json")}
    assert not [name for name, text in texts.items() if "Lbdata" in text or "TokenizersBackend" in text]
    tokenizer = json.loads(texts["tokenizer_config.json"])
    assert tokenizer["tokenizer_class"] == "PreTrainedTokenizerFast"  # tokenizer.json as is, 4.x and 5.x
    assert tokenizer["extra_special_tokens"] == {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}
    assert tokenizer["model_input_names"] == ["input_ids", "attention_mask"]  # Qwen's models take no token_type_ids
    assert not any("processor_class" in json.loads(t) for t in texts.values())  # follows from qwen2_5_vl
    nested = json.loads(texts["processor_config.json"])["image_processor"]
    flat = json.loads(texts["preprocessor_config.json"])  # what transformers 4.x reads
    assert nested == flat and flat["image_processor_type"] == "Qwen2VLImageProcessor"
    assert (flat["min_pixels"], flat["max_pixels"]) == (flat["size"]["shortest_edge"], flat["size"]["longest_edge"])
    config = json.loads(texts["config.json"])  # Qwen's checkpoint layout: text settings at the top level
    assert config["model_type"] == "qwen2_5_vl" and "text_config" not in config and "vision_config" in config
    assert config["hidden_size"] == TinyModelConfig().hidden_size
    assert config["rope_scaling"]["mrope_section"] == config["rope_parameters"]["mrope_section"]
    assert config["rope_scaling"]["mrope_section"] == TinyModelConfig().mrope_section
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"]


def test_config_layout_loads_the_same_model_in_this_transformers(tiny_model_dir):
    from transformers import AutoConfig

    from lbdata.train.tiny import TinyModelConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)
    spec = TinyModelConfig()
    assert config.text_config.hidden_size == spec.hidden_size
    assert config.text_config.num_hidden_layers == spec.num_hidden_layers
    assert config.text_config.rope_parameters["mrope_section"] == spec.mrope_section
    assert config.tie_word_embeddings and config.vision_config.depth == spec.vision_depth


@pytest.mark.parametrize(
    ("width", "height", "mode"), [(448, 448, "RGB"), (333, 150, "RGB"), (1200, 900, "RGBA"), (20, 30, "L")]
)
def test_pixel_values_match_stock_qwen2_vl(tiny_model_dir, width, height, mode):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from lbdata.train.processor import load_processor

    processor = load_processor(tiny_model_dir)
    image = noise_image(width, height, mode="RGBA" if mode == "RGBA" else "RGB").convert(mode)
    ours = processor.image_processor(images=[image], return_tensors="np")
    stock = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=448 * 448)(
        images=[image], return_tensors="np"
    )
    grid = expected_grid(width, height, 56 * 56, 448 * 448)
    assert ours["image_grid_thw"].tolist() == [list(grid)] == stock["image_grid_thw"].tolist()
    assert ours["pixel_values"].shape == (grid[1] * grid[2], 3 * 2 * 14 * 14)
    np.testing.assert_array_equal(ours["pixel_values"], stock["pixel_values"])

    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Find x."}]}],
        add_generation_prompt=True,
        tokenize=False,
    )
    batch = processor(text=[text], images=[image], return_tensors="np")
    image_token_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((batch["input_ids"] == image_token_id).sum()) == grid[1] * grid[2] // 4


def test_448_image_costs_256_tokens(tiny_model_dir):
    from lbdata.train.processor import load_processor

    processor = load_processor(tiny_model_dir)
    assert processor.image_processor.get_number_of_image_patches(448, 448) // 4 == 256


# --------------------------------------------------------------------------- chat template and tokenizer


def look_back_conversation() -> list[dict]:
    return [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": "Find the area of the triangle."}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": LOOK_BACK_ANSWER}]},
    ]


def test_chat_template_renders_like_qwen2_5_vl_and_trains_the_assistant_turn_only(tiny_model_dir):
    import trl
    from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

    from lbdata.train.processor import load_processor

    processor = load_processor(tiny_model_dir)
    reference = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5_vl.jinja").read_text()
    conversation = look_back_conversation()
    for prompt_only in (False, True):
        messages = conversation[:1] if prompt_only else conversation
        ours = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt_only)
        theirs = processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=prompt_only, chat_template=reference
        )
        assert ours == theirs
    rendered = processor.apply_chat_template(conversation[:1], tokenize=False, add_generation_prompt=True)
    assert rendered.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert "<|vision_start|><|image_pad|><|vision_end|>Find the area" in rendered
    assert rendered.endswith("<|im_start|>assistant\n")

    assert has_generation_markers(processor.chat_template)
    assert is_chat_template_stop_token_trained(processor)
    tokenizer = processor.tokenizer
    out = tokenizer.apply_chat_template(
        conversation, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    trained = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(trained) == LOOK_BACK_ANSWER + "<|im_end|>\n"


def test_look_back_tags_are_plain_single_tokens(tiny_model_dir):
    from lbdata.train.processor import load_processor
    from lbdata.train.tiny import LOOK_BACK_TAGS

    tokenizer = load_processor(tiny_model_dir).tokenizer
    for tag in LOOK_BACK_TAGS:
        for text in (tag, " " + tag):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            assert len(ids) == 1, (text, tokenizer.convert_ids_to_tokens(ids))
            assert ids[0] not in tokenizer.all_special_ids
    ids = tokenizer(LOOK_BACK_ANSWER, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == LOOK_BACK_ANSWER
    assert len(ids) < len(LOOK_BACK_ANSWER) / 2  # compact: the corpus taught it the words and the LaTeX


# --------------------------------------------------------------------------- model


def test_forward_and_backward_on_processor_output(tiny_model_dir):
    import torch
    from transformers import AutoModelForImageTextToText

    from lbdata.train.processor import load_processor

    processor = load_processor(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir))
    model.train()
    long_answer = " ".join([LOOK_BACK_ANSWER] * 4)
    conversation = look_back_conversation()
    conversation[1]["content"][0]["text"] = long_answer
    text = processor.apply_chat_template(conversation, tokenize=False)
    batch = processor(text=[text], images=[noise_image(448, 448)], return_tensors="pt")
    assert int((batch["input_ids"] == model.config.image_token_id).sum()) == 256

    torch.set_num_threads(1)
    patch_weight = model.model.visual.patch_embed.proj.weight
    timings = []
    for _ in range(3):
        model.zero_grad()
        start = time.perf_counter()
        out = model(**batch, labels=batch["input_ids"])
        out.loss.backward()
        timings.append(time.perf_counter() - start)
    assert torch.isfinite(out.loss)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert patch_weight.grad is not None and patch_weight.grad.abs().sum() > 0  # the image reaches the loss
    assert min(timings) < 3.0, f"forward+backward took {min(timings):.2f}s; the tiny model must stay tiny"


def test_generate_from_an_image_in_a_fresh_process(tiny_model_dir):
    out = run_python(
        "import json, numpy as np, lbdata.train.processor\n"
        "from PIL import Image\n"
        "from transformers import AutoModelForImageTextToText, AutoProcessor\n"
        f"path = {str(tiny_model_dir)!r}\n"
        "processor = AutoProcessor.from_pretrained(path)\n"
        "model = AutoModelForImageTextToText.from_pretrained(path)\n"
        "image = Image.fromarray(np.random.RandomState(0).randint(0, 256, (200, 300, 3), dtype=np.uint8))\n"
        "messages = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'Find x.'}]}]\n"
        "text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)\n"
        "batch = processor(text=[text], images=[image], return_tensors='pt')\n"
        "ids = model.generate(**batch, max_new_tokens=6, do_sample=False)\n"
        "new = ids[0, batch['input_ids'].shape[1]:]\n"
        "print(json.dumps({'new': len(new), 'grid': batch['image_grid_thw'].tolist(),\n"
        "                  'text': processor.decode(new)}))\n"
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert 1 <= result["new"] <= 6
    assert result["grid"] == [list(expected_grid(300, 200, 56 * 56, 448 * 448))]
    assert isinstance(result["text"], str)


# --------------------------------------------------------------------------- CLI and imports


def test_cli_builds_a_tiny_model(tmp_path):
    from typer.testing import CliRunner

    from lbdata.cli import app

    result = CliRunner().invoke(app, ["train", "tiny-model", "--out", str(tmp_path / "m"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "parameters" in result.stdout
    marker = json.loads((tmp_path / "m" / "lbdata_tiny.json").read_text())
    assert marker["seed"] == 3


def test_serve_refuses_a_directory_without_a_model(tmp_path):
    from lbdata.serve import check_servable

    with pytest.raises(UsageError, match="config.json"):
        check_servable(tmp_path)


def test_lbdata_imports_stay_light():
    out = run_python(
        "import sys, lbdata, lbdata.images, lbdata.train, lbdata.serve\n"
        "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))\n"
    )
    assert out.strip().splitlines()[-1] == "[]"


# --------------------------------------------------------------------------- serving


@pytest.mark.slow
def test_served_model_sees_the_image(tiny_server, tiny_model_dir):
    from openai import OpenAI

    from lbdata.train.processor import load_processor

    base_url, model = tiny_server
    client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
    image = noise_image(400, 300, seed=7)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    question = {"type": "text", "text": "Find the area of the triangle."}

    def ask(content: list[dict]):
        return client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}], max_tokens=5, temperature=0.0
        )

    with_image = ask([{"type": "image_url", "image_url": {"url": url}}, question])
    text_only = ask([question])

    grid = load_processor(tiny_model_dir).image_processor(images=[image])["image_grid_thw"][0]
    image_tokens = int(np.prod(grid)) // 4
    assert image_tokens == 154  # 400x300 -> 392x308 -> 28x22 patches -> 154 merged tokens
    # <|vision_start|> + image tokens + <|vision_end|> are the only difference between the two prompts.
    assert with_image.usage.prompt_tokens - text_only.usage.prompt_tokens == image_tokens + 2
    assert 1 <= with_image.usage.completion_tokens <= 5
    assert isinstance(with_image.choices[0].message.content, str)
    assert [m.id for m in client.models.list().data] == [model]
