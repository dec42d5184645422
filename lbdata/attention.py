"""Where the model looks while it writes: the attention share on the image, the question and its own text.

``image_attention(model, image, question)`` reproduces the paper's attention-trend analysis (notes,
section 3) on any Qwen2.5-VL checkpoint, the tiny one included:

1. the prompt is the evaluation's (system prompt, image, question + the variant's instruction); the
   response is generated greedily, or given (``response=``) and teacher-forced;
2. one forward pass over prompt + response with eager attention; for every response token, the
   attention row of that token (its query over every earlier position) is averaged over heads;
3. per layer, the row is normalised over the positions from the first image token onward, so the
   attention sink on the system prompt is left out, and split into three shares: image tokens, question
   tokens (everything between the last image and the response: the question, the instruction and the
   assistant header) and response tokens. ``<|vision_end|>`` counts in the denominator only, so the three
   shares sum to slightly under 1;
4. the shares are averaged uniformly over layers (a layer with no mass in the window counts as 0).

Token ranges come from the model's special token ids and ``image_grid_thw`` (tokens per image =
t·h·w / merge²), never fixed offsets. The attention of a token computed in one teacher-forced pass
is the attention it had when generated (causal masking), so generated and given responses are
measured the same way. The per-layer reduction happens in a forward hook on each text attention
module, so memory stays at one layer's attention matrix, not all of them.

``<back>`` spans come from ``lbdata.validate.parse_trace`` (character spans, tags included) mapped
to tokens. The look-back lift is the mean image share inside ``<back>`` spans divided by the mean
image share of the tokens after the first ``<think>`` that are outside them; it is NaN, with a note
saying why, when the response has no ``<back>`` (or nothing to compare against).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbdata.errors import UsageError
from lbdata.prompts import user_prompt
from lbdata.records import parse_variant

log = logging.getLogger(__name__)

BACK_SHADE = "#f6c8c8"  # the fill of <back> spans in the plot (solid, drawn under the curves)
CURVES = (("image", "Image", "tab:blue"), ("question", "Query text", "tab:orange"), ("generated", "Generated", "tab:green"))


@dataclass
class TokenRanges:
    """Positions in the prompt: image spans, the question span, where the response starts."""

    image_spans: list[tuple[int, int]]
    question: tuple[int, int]
    response_start: int

    @property
    def window_start(self) -> int:
        """The first image token: the denominator covers positions from here on (the sink is left out)."""
        return self.image_spans[0][0]


@dataclass
class AttentionTrace:
    """Per response token, the attention shares on image / question / generated tokens, and the back spans."""

    model: str
    question: str
    variant: str
    response: str
    tokens: list[str]
    image: list[float]
    question_share: list[float]
    generated: list[float]
    back_spans: list[tuple[int, int]]  # token index ranges [start, end), <back> and </back> included
    ranges: TokenRanges
    teacher_forced: bool
    lift: float = math.nan
    lift_note: str = ""
    layers: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def in_back(self, i: int) -> bool:
        return any(s <= i < e for s, e in self.back_spans)

    def summary(self) -> dict[str, Any]:
        n = len(self.tokens)

        def mean(xs: list[float]) -> float | None:
            return sum(xs) / len(xs) if xs else None

        return {
            "model": self.model,
            "question": self.question,
            "variant": self.variant,
            "teacher_forced": self.teacher_forced,
            "response_tokens": n,
            "layers": self.layers,
            "back_spans": [list(s) for s in self.back_spans],
            "mean_image_share": mean(self.image),
            "mean_question_share": mean(self.question_share),
            "mean_generated_share": mean(self.generated),
            "look_back_lift": None if math.isnan(self.lift) else self.lift,
            "look_back_lift_note": self.lift_note,
            "ranges": {
                "image_spans": [list(s) for s in self.ranges.image_spans],
                "question": list(self.ranges.question),
                "response_start": self.ranges.response_start,
            },
            "response": self.response,
        }

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["step", "token", "image", "question", "generated", "in_back"])
            for i, tok in enumerate(self.tokens):
                writer.writerow(
                    [i, tok, f"{self.image[i]:.6f}", f"{self.question_share[i]:.6f}", f"{self.generated[i]:.6f}",
                     int(self.in_back(i))]
                )
        return path

    def plot(self, path: str | Path):
        """Save the three curves with the ``<back>`` spans shaded; returns the matplotlib figure (closed)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = len(self.tokens)
        fig, ax = plt.subplots(figsize=(min(24.0, max(8.0, n / 40)), 4.0))
        steps = list(range(n))
        for key, label, colour in CURVES:
            values = self.question_share if key == "question" else getattr(self, key)
            ax.plot(steps, values, color=colour, label=label, linewidth=1.2, zorder=3)
        for k, (s, e) in enumerate(self.back_spans):
            ax.axvspan(s - 0.5, e - 0.5, color=BACK_SHADE, zorder=0, label="<back>" if k == 0 else None)
            ax.axvline(s - 0.5, color="red", linewidth=0.8, zorder=2)
            ax.axvline(e - 0.5, color="purple", linewidth=0.8, zorder=2)
        ax.set_xlim(-0.5, max(n - 0.5, 0.5))
        ax.set_ylim(0, 1)
        ax.set_xlabel("response token")
        ax.set_ylabel("attention share")
        lift = "n/a" if math.isnan(self.lift) else f"{self.lift:.2f}"
        ax.set_title(f"Attention through the response — look-back lift {lift}", fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return fig

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """``attention.png``, ``attention.csv`` and ``attention.json`` (summary and lift) in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"png": out / "attention.png", "csv": out / "attention.csv", "json": out / "attention.json"}
        self.plot(paths["png"])
        self.write_csv(paths["csv"])
        paths["json"].write_text(json.dumps(self.summary(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return paths


# ---------------------------------------------------------------------------- pure parts (no torch)


def token_ranges(input_ids: list[int], image_grid_thw: list[list[int]], *, merge_size: int, image_token_id: int,
                 vision_start_id: int, vision_end_id: int) -> TokenRanges:
    """Image spans from ``<|vision_start|>`` and ``image_grid_thw``; the question runs to the prompt's end."""
    starts = [i for i, t in enumerate(input_ids) if t == vision_start_id]
    if len(starts) != len(image_grid_thw):
        raise UsageError(
            f"the prompt has {len(starts)} <|vision_start|> tokens for {len(image_grid_thw)} images; "
            "use the model's own processor and chat template"
        )
    spans = []
    for start, (t, h, w) in zip(starts, image_grid_thw, strict=True):
        n = t * h * w // (merge_size * merge_size)
        span = (start + 1, start + 1 + n)
        if span[1] >= len(input_ids) or any(input_ids[j] != image_token_id for j in range(*span)) \
                or input_ids[span[1]] != vision_end_id:
            raise UsageError(
                f"image tokens at {span} do not match image_grid_thw {[t, h, w]} (merge {merge_size}); "
                "the processor and the model disagree — load both from the same checkpoint"
            )
        spans.append(span)
    return TokenRanges(image_spans=spans, question=(spans[-1][1] + 1, len(input_ids)), response_start=len(input_ids))


def token_char_ends(decode, ids: list[int]) -> list[int]:
    """Character offset where each token's text ends in ``decode(ids)`` (prefix decoding, UTF-8 safe)."""
    ends, last = [], 0
    for i in range(len(ids)):
        last = max(last, len(decode(ids[: i + 1])))
        ends.append(last)
    return ends


def back_token_spans(text: str, char_ends: list[int]) -> list[tuple[int, int]]:
    """Token ranges [start, end) covering each ``<back> … </back>`` segment of ``text``, tags included."""
    from lbdata.validate import parse_trace

    spans = []
    for seg in parse_trace(text).backs:
        s_char, e_char = seg.span
        tokens = [i for i, end in enumerate(char_ends) if end > s_char and (char_ends[i - 1] if i else 0) < e_char]
        if tokens:
            spans.append((tokens[0], tokens[-1] + 1))
    return spans


def look_back_lift(image: list[float], text: str, char_ends: list[int],
                   back_spans: list[tuple[int, int]]) -> tuple[float, str]:
    """Mean image share inside the backs / mean image share after the first think, outside the backs."""
    from lbdata.validate import parse_trace

    if not back_spans:
        return math.nan, "no <back> in the response: the lift is undefined"
    thinks = parse_trace(text).thinks
    if not thinks:
        return math.nan, "no <think> segment before the <back>: nothing to compare against"
    first_think_end = thinks[0].span[1]
    inside = {i for s, e in back_spans for i in range(s, e)}
    after = [i for i, end in enumerate(char_ends)
             if (char_ends[i - 1] if i else 0) >= first_think_end and i not in inside]
    if not after:
        return math.nan, "no tokens after the first </think> outside <back>: nothing to compare against"
    base = sum(image[i] for i in after) / len(after)
    back = sum(image[i] for i in sorted(inside)) / len(inside)
    if base == 0:
        return math.nan, "the image share outside <back> is 0: the ratio is undefined"
    return back / base, f"mean image share {back:.4f} inside <back> over {base:.4f} after the first think"


# ---------------------------------------------------------------------------- the measurement


def _text_layers(model) -> list:
    layers = model.model.language_model.layers
    return [layer.self_attn for layer in layers]


def image_attention(
    model,
    image,
    question: str,
    *,
    variant: str = "semantic",
    max_new_tokens: int = 2048,
    response: str | None = None,
) -> AttentionTrace:
    """Measure the attention shares per response token (see the module doc for the exact computation).

    ``model``: a checkpoint path or an ``lbdata.eval.LocalModel`` loaded with
    ``attn_implementation="eager"``. ``image``: a path, encoded bytes or a PIL image. ``response``:
    score this text instead of generating (teacher forcing); otherwise greedy generation up to
    ``max_new_tokens`` or the end-of-turn token.
    """
    from lbdata.eval import LocalModel

    variant = parse_variant(variant)
    if isinstance(model, str | Path):
        model = LocalModel(model, attn_implementation="eager")
    if model.model.config._attn_implementation != "eager":
        raise UsageError("attention shares need eager attention; load the model with attn_implementation='eager'")
    pil = _open_image(image)
    net, tokenizer = model.model, model.processor.tokenizer
    inputs, prompt_ids, ranges = _prompt_inputs(model, pil, question, variant)
    ids = _response_ids(model, inputs, prompt_ids, response, max_new_tokens)
    shares, n_layers = _forward_shares(net, inputs, ids, ranges)
    decode = tokenizer.decode
    response_text = decode(ids)
    char_ends = token_char_ends(decode, ids)
    spans = back_token_spans(response_text, char_ends)
    image_share = shares[:, 0].tolist()
    lift, note = look_back_lift(image_share, response_text, char_ends, spans)
    return AttentionTrace(
        model=model.label,
        question=question,
        variant=variant,
        response=response_text,
        tokens=[decode([t]) for t in ids],
        image=image_share,
        question_share=shares[:, 1].tolist(),
        generated=shares[:, 2].tolist(),
        back_spans=spans,
        ranges=ranges,
        teacher_forced=response is not None,
        lift=lift,
        lift_note=note,
        layers=n_layers,
    )


def _open_image(image):
    """The image as the processor takes it, from a path, encoded bytes or a PIL image."""
    import io

    from PIL import Image

    from lbdata.eval import open_images

    if isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise UsageError(f"image {str(path)!r} not found; pass a PNG or JPEG file")
        blob = path.read_bytes()
    elif isinstance(image, bytes | bytearray):
        blob = bytes(image)
    else:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        blob = buf.getvalue()
    try:
        return open_images([blob])
    except (OSError, Image.DecompressionBombError) as exc:
        raise UsageError(f"cannot read the image ({exc}); pass a PNG or JPEG file") from None


def _prompt_inputs(model, pil, question: str, variant: str):
    """The processed prompt (chat template, image), its token ids and where the image and question lie."""
    from lbdata.eval import chat_messages

    processor, config = model.processor, model.model.config
    prompt = user_prompt(question, variant)
    text = processor.apply_chat_template(chat_messages(prompt, 1), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[pil], return_tensors="pt").to(model.device)
    prompt_ids = inputs["input_ids"][0].tolist()
    ranges = token_ranges(
        prompt_ids,
        inputs["image_grid_thw"].tolist(),
        merge_size=processor.image_processor.merge_size,
        image_token_id=config.image_token_id,
        vision_start_id=config.vision_start_token_id,
        vision_end_id=config.vision_end_token_id,
    )
    return inputs, prompt_ids, ranges


def _response_ids(
    model, inputs, prompt_ids: list[int], response: str | None, max_new_tokens: int
) -> list[int]:
    """The response's token ids: ``response`` tokenised, or greedy generation up to the end-of-turn token."""
    import torch

    if response is None:
        params = model.generation_config(_greedy(max_new_tokens))
        with torch.inference_mode():
            out = model.model.generate(**inputs, generation_config=params)
        new = out[0, len(prompt_ids):].tolist()
        stop = next((i for i, t in enumerate(new) if t in model.eos_ids), len(new))
        ids = new[:stop]
    else:
        ids = model.processor.tokenizer(response, add_special_tokens=False)["input_ids"]
    if not ids:
        raise UsageError("the response is empty; pass a longer --max-new-tokens or a --response text")
    return ids


def _greedy(max_new_tokens: int):
    from lbdata.eval import GenerationParams

    return GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0)


def _forward_shares(net, inputs, ids: list[int], ranges: TokenRanges):
    """One teacher-forced pass; per layer, the response rows' shares, reduced inside a forward hook."""
    import torch

    device = inputs["input_ids"].device
    extra = torch.tensor([ids], dtype=inputs["input_ids"].dtype, device=device)
    p, t = ranges.response_start, len(ids)
    batch = dict(inputs)
    batch["input_ids"] = torch.cat([inputs["input_ids"], extra], dim=1)
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    if "mm_token_type_ids" in inputs:
        batch["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(extra)], dim=1)

    image_mask = torch.zeros(p + t, dtype=torch.bool, device=device)
    for s, e in ranges.image_spans:
        image_mask[s:e] = True
    q0, q1 = ranges.question
    w0 = ranges.window_start
    per_layer: list[torch.Tensor] = []

    def hook(_module, _args, output):
        weights = output[1]
        if weights is None:
            raise UsageError("the attention module returned no weights; load the model with attn_implementation='eager'")
        rows = weights[0, :, p : p + t, :].float().mean(dim=0)  # [t, keys], averaged over heads
        z = rows[:, w0:].sum(dim=-1)
        parts = torch.stack(
            [rows[:, image_mask].sum(-1), rows[:, q0:q1].sum(-1), rows[:, p:].sum(-1)], dim=-1
        )  # [t, 3]
        ok = (z > 0).unsqueeze(-1)
        per_layer.append(torch.where(ok, parts / z.clamp_min(1e-30).unsqueeze(-1), torch.zeros_like(parts)).cpu())

    handles = [attn.register_forward_hook(hook) for attn in _text_layers(net)]
    try:
        with torch.inference_mode():
            net(**batch, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    n_layers = len(per_layer)
    shares = torch.stack(per_layer).sum(dim=0) / n_layers  # uniform over layers, zero-mass layers count 0
    return shares, n_layers
