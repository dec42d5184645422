"""lbdata attention: token ranges, <back> spans, the look-back lift, the series on the tiny model (and its
agreement with the paper's per-step computation from generate), the PNG with its shaded spans, the CLI."""

from __future__ import annotations

import csv
import json
import math

import pytest
from PIL import Image
from typer.testing import CliRunner

from lbdata.attention import (
    BACK_SHADE,
    back_token_spans,
    image_attention,
    look_back_lift,
    token_char_ends,
    token_ranges,
)
from lbdata.cli import app
from lbdata.errors import UsageError
from tests.conftest import png_bytes

QUESTION = "How tall is the red bar?"
WITH_BACK = (
    "<think> The chart has three bars and the red one is the tallest of them. </think> "
    "<back> Looking at the image again, the red bar reaches the gridline at 12 on the axis. </back> "
    "<think> So the red bar is 12 units tall. </think> \\boxed{12}"
)
WITHOUT_BACK = "<think> The chart has three bars and the red one reaches 12. </think> \\boxed{12}"


# ---------------------------------------------------------------------------- pure parts


def test_token_ranges_come_from_the_grid_and_special_ids():
    # system(3) <vs> 6 image tokens <ve> question(4) header(3); grid 1x4x6 with merge 2 -> 6 tokens
    ids = [1, 2, 3, 9] + [12] * 6 + [10] + [20, 21, 22, 23] + [2, 1, 30]
    r = token_ranges(ids, [[1, 4, 6]], merge_size=2, image_token_id=12, vision_start_id=9, vision_end_id=10)
    assert r.image_spans == [(4, 10)] and r.window_start == 4
    assert r.question == (11, len(ids)) and r.response_start == len(ids)
    with pytest.raises(UsageError, match="do not match image_grid_thw"):
        token_ranges(ids, [[1, 4, 8]], merge_size=2, image_token_id=12, vision_start_id=9, vision_end_id=10)


def char_tokens(text: str):
    """A tokenizer stand-in: one token per character, decode = join."""
    ids = [ord(c) for c in text]
    return ids, (lambda xs: "".join(chr(x) for x in xs))


def test_back_spans_cover_the_tags_and_the_lift_compares_against_text_after_the_first_think():
    ids, decode = char_tokens(WITH_BACK)
    ends = token_char_ends(decode, ids)
    assert ends == list(range(1, len(WITH_BACK) + 1))
    (span,) = back_token_spans(WITH_BACK, ends)
    assert WITH_BACK[span[0] : span[1]] == WITH_BACK[WITH_BACK.index("<back>") : WITH_BACK.index("</back>") + 7]

    first_think_end = WITH_BACK.index("</think>") + len("</think>")
    image = [0.0 if i < first_think_end else (0.3 if span[0] <= i < span[1] else 0.1) for i in range(len(ids))]
    image[0] = 5.0  # the first think is left out of the baseline
    lift, note = look_back_lift(image, WITH_BACK, ends, [span])
    assert lift == pytest.approx(3.0)
    assert "inside <back>" in note


def test_lift_is_nan_with_a_reason_when_there_is_no_back():
    ids, decode = char_tokens(WITHOUT_BACK)
    ends = token_char_ends(decode, ids)
    assert back_token_spans(WITHOUT_BACK, ends) == []
    lift, note = look_back_lift([0.1] * len(ids), WITHOUT_BACK, ends, [])
    assert math.isnan(lift) and "no <back>" in note


# ---------------------------------------------------------------------------- on the tiny model


@pytest.fixture(scope="module")
def eager_tiny(tiny_model_dir):
    from lbdata.eval import LocalModel

    return LocalModel(tiny_model_dir, attn_implementation="eager")


@pytest.fixture()
def image():
    return png_bytes("red", (56, 84))


@pytest.mark.slow
def test_generated_series_shape_and_normalisation(eager_tiny, image):
    trace = image_attention(eager_tiny, image, QUESTION, max_new_tokens=6)
    n = len(trace.tokens)
    assert 1 <= n <= 6 and not trace.teacher_forced
    assert len(trace.image) == len(trace.question_share) == len(trace.generated) == n
    assert trace.layers == eager_tiny.model.config.text_config.num_hidden_layers
    for shares in zip(trace.image, trace.question_share, trace.generated, strict=True):
        assert all(0.0 <= s <= 1.0 for s in shares)
        assert 0.5 < sum(shares) <= 1.0 + 1e-6  # <|vision_end|> is in the denominator only
    (span,) = trace.ranges.image_spans
    assert span[1] - span[0] == (84 // 14) * (56 // 14) // 4  # 2x2 patch merge
    assert math.isnan(trace.lift) or trace.back_spans  # no back in a random model's answer: lift undefined


@pytest.mark.slow
def test_teacher_forced_rows_match_the_papers_per_step_computation(eager_tiny, image):
    """Row i equals the paper's step i+1: generate(output_attentions=True), attentions[i+1], the same ratios."""
    import torch

    from lbdata.eval import chat_messages, open_images
    from lbdata.prompts import user_prompt

    trace = image_attention(eager_tiny, image, QUESTION, max_new_tokens=8)
    processor, net = eager_tiny.processor, eager_tiny.model
    text = processor.apply_chat_template(chat_messages(user_prompt(QUESTION, "semantic"), 1), add_generation_prompt=True,
                                         tokenize=False)
    inputs = processor(text=[text], images=[open_images([image])], return_tensors="pt")
    with torch.inference_mode():
        out = net.generate(**inputs, max_new_tokens=len(trace.tokens) + 1, do_sample=False, output_attentions=True,
                           return_dict_in_generate=True)
    (s, e), = trace.ranges.image_spans
    q0, gen_start = trace.ranges.question[0], trace.ranges.response_start
    for step in range(1, len(trace.tokens) + 1):
        img = txt = gen = 0.0
        layers = out.attentions[step]
        for layer in layers:
            row = layer[0, :, -1, :].float().mean(0)
            z = row[s:].sum()
            img += float(row[s:e].sum() / z)
            txt += float(row[q0:gen_start].sum() / z)
            gen += float(row[gen_start:].sum() / z)
        assert trace.image[step - 1] == pytest.approx(img / len(layers), abs=1e-4)
        assert trace.question_share[step - 1] == pytest.approx(txt / len(layers), abs=1e-4)
        assert trace.generated[step - 1] == pytest.approx(gen / len(layers), abs=1e-4)


def shade_pixels(path) -> int:
    import numpy as np

    target = np.array([int(BACK_SHADE[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"))
    return int((pixels == target).all(axis=-1).sum())


def test_a_given_response_is_scored_with_its_back_span_shaded(eager_tiny, image, tmp_path):
    trace = image_attention(eager_tiny, image, QUESTION, response=WITH_BACK)
    assert trace.teacher_forced
    tokenizer = eager_tiny.processor.tokenizer
    assert len(trace.tokens) == len(tokenizer(WITH_BACK, add_special_tokens=False)["input_ids"])
    (span,) = trace.back_spans
    covered = "".join(trace.tokens[span[0] : span[1]]).strip()
    assert covered.startswith("<back>") and covered.endswith("</back>")
    assert not math.isnan(trace.lift) and trace.lift > 0

    paths = trace.write(tmp_path / "att")
    assert shade_pixels(paths["png"]) > 500
    with paths["csv"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(trace.tokens)
    assert [int(r["in_back"]) for r in rows] == [int(span[0] <= i < span[1]) for i in range(len(rows))]
    assert all(0.0 <= float(r["image"]) <= 1.0 for r in rows)
    summary = json.loads(paths["json"].read_text())
    assert summary["look_back_lift"] == pytest.approx(trace.lift) and summary["back_spans"] == [list(span)]


def test_no_back_no_shade_and_an_undefined_lift(eager_tiny, image, tmp_path):
    trace = image_attention(eager_tiny, image, QUESTION, response=WITHOUT_BACK)
    assert trace.back_spans == [] and math.isnan(trace.lift) and "no <back>" in trace.lift_note
    paths = trace.write(tmp_path / "att")
    assert shade_pixels(paths["png"]) == 0
    assert json.loads(paths["json"].read_text())["look_back_lift"] is None


def test_cli_attention(tiny_model_dir, tmp_path):
    image_path = tmp_path / "chart.png"
    image_path.write_bytes(png_bytes("blue", (56, 56)))
    out = tmp_path / "att"
    result = CliRunner().invoke(app, [
        "attention", "--model", str(tiny_model_dir), "--image", str(image_path), "--question", QUESTION,
        "--response", WITH_BACK, "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "lift" in result.output and "given response" in result.output
    assert {p.name for p in out.iterdir()} == {"attention.png", "attention.csv", "attention.json"}
    missing = CliRunner().invoke(app, [
        "attention", "--model", str(tiny_model_dir), "--image", str(tmp_path / "nope.png"), "--question", "Q",
        "--out", str(out),
    ])
    assert missing.exit_code != 0 and "not found" in str(missing.exception)
