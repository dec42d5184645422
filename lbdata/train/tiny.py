"""A tiny Qwen2.5-VL built offline: random weights, a locally trained tokenizer, an image-only processor.

``build_tiny_model(out_dir)`` writes a directory that loads like a real checkpoint::

    import lbdata.train.processor  # without torchvision: the image-only processor for qwen2_5_vl
    processor = AutoProcessor.from_pretrained(out_dir)
    model = AutoModelForImageTextToText.from_pretrained(out_dir)

Its files name stock classes only, in spellings transformers 4.5x and 5.x both read: tokenizer
``PreTrainedTokenizerFast`` (``tokenizer.json`` as is), image processor ``Qwen2VLImageProcessor``
(``preprocessor_config.json`` for 4.x, ``processor_config.json`` for 5.x), no ``processor_class`` (the
processor follows from the model type, ``Qwen2_5_VLProcessor``), and ``config.json`` in the layout of
Qwen's own checkpoints (text settings at the top level, rotary settings as ``rope_parameters`` for 5.x
and ``rope_theta``/``rope_scaling`` for 4.x). Where torchvision is
installed (LLaMA-Factory's, EasyR1's and verl's environments) stock transformers loads it without
lbdata; where it is not, ``lbdata.train.processor`` supplies the image-only processor.

It is a real ``Qwen2_5_VLForConditionalGeneration`` (window-attention vision tower, patch merger,
M-RoPE text model), only small: a few million parameters, so teachers, training and evaluation can be
exercised end to end on one CPU core. The tokenizer is a byte-level BPE trained on a small built-in
corpus (Look-Back traces, math and LaTeX, the model-facing instructions of ``prompts/instructions``);
it carries Qwen's special tokens and chat template. ``<think>``/``<back>`` are plain text, as in the
paper, but a pre-tokenizer rule keeps each tag one piece so it becomes a single token. Same seed, same
bytes: every file is a function of the seed, the spec and the installed library versions.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from lbdata.errors import ConfigError, UsageError
from lbdata.resources import resource_dir

log = logging.getLogger(__name__)

MARKER_FILE = "lbdata_tiny.json"
SYSTEM_PROMPT = "You are a helpful assistant."

# Qwen2.5's special tokens, in Qwen's order; here they take ids 0..13 (the config points at these ids).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Added but not special in Qwen2.5 (kept when decoding with skip_special_tokens).
ADDED_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
LOOK_BACK_TAGS = ("<think>", "</think>", "<back>", "</back>")

# Qwen2's split rule, preceded by one alternative that keeps a Look-Back tag (with its leading space)
# in one piece, so BPE can learn it as a single token while it stays plain text.
PRETOKENIZE_REGEX = (
    r"""(?: ?</?(?:think|back)>)|(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Qwen2.5-VL's conversation format (system default, image placeholder, generation prompt), written
# with {% generation %} markers around each assistant turn, its <|im_end|> included, so TRL's
# assistant_only_loss masks everything else and the model learns to stop.
CHAT_TEMPLATE = """\
{%- macro render(content) -%}
{%- if content is string -%}{{ content }}
{%- else -%}{%- for part in content -%}
{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}\
<|vision_start|><|image_pad|><|vision_end|>
{%- elif part['type'] == 'video' or 'video' in part -%}\
{{ raise_exception('this processor takes images and text only, not video') }}
{%- elif 'text' in part -%}{{ part['text'] }}
{%- endif -%}
{%- endfor -%}{%- endif -%}
{%- endmacro -%}
{%- for message in messages -%}
{%- if loop.first and message['role'] != 'system' -%}
<|im_start|>system
You are a helpful assistant.<|im_end|>
{% endif -%}
{%- if message['role'] == 'assistant' -%}
<|im_start|>assistant
{% generation %}{{ render(message['content']) }}<|im_end|>
{% endgeneration -%}
{%- else -%}
<|im_start|>{{ message['role'] }}
{{ render(message['content']) }}<|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
"""


@dataclass(frozen=True)
class TinyModelConfig:
    """Shape of the tiny model. Defaults: ~3 M parameters, 256 image tokens for a 448×448 image."""

    vocab_size: int = field(
        default=4096, metadata={"help": "BPE vocabulary target (the corpus may yield fewer)."}
    )
    hidden_size: int = field(default=128, metadata={"help": "Text model width."})
    intermediate_size: int = field(default=384, metadata={"help": "Text MLP width."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Text decoder layers."})
    num_attention_heads: int = field(
        default=4, metadata={"help": "Text attention heads (head dim = width / heads)."}
    )
    num_key_value_heads: int = field(
        default=2, metadata={"help": "Text key/value heads (grouped-query attention)."}
    )
    vision_hidden_size: int = field(default=64, metadata={"help": "Vision tower width."})
    vision_intermediate_size: int = field(default=128, metadata={"help": "Vision MLP width."})
    vision_depth: int = field(
        default=2, metadata={"help": "Vision blocks; the last one uses full attention."}
    )
    vision_num_heads: int = field(default=4, metadata={"help": "Vision attention heads."})
    min_pixels: int = field(
        default=56 * 56, metadata={"help": "Smallest image area after resizing (pixels)."}
    )
    max_pixels: int = field(
        default=448 * 448,
        metadata={"help": "Largest image area after resizing; 448×448 gives 256 image tokens."},
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ConfigError(f"tiny model {f.name} must be positive, got {getattr(self, f.name)}")
        if self.vocab_size < 512:
            raise ConfigError(
                f"tiny model vocab_size must be at least 512 (bytes + specials), got {self.vocab_size}"
            )
        if self.hidden_size % self.num_attention_heads or (self.hidden_size // self.num_attention_heads) % 8:
            raise ConfigError(
                f"hidden_size {self.hidden_size} / num_attention_heads {self.num_attention_heads} must be a "
                "multiple of 8 (M-RoPE splits half the head dimension three ways); e.g. 128 / 4"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError("num_attention_heads must be a multiple of num_key_value_heads")
        if (
            self.vision_hidden_size % self.vision_num_heads
            or (self.vision_hidden_size // self.vision_num_heads) % 4
        ):
            raise ConfigError("vision_hidden_size / vision_num_heads must be a multiple of 4; e.g. 64 / 4")
        if self.max_pixels < max(self.min_pixels, 28 * 28):
            raise ConfigError(f"max_pixels must be at least max(min_pixels, 784), got {self.max_pixels}")

    @property
    def mrope_section(self) -> list[int]:
        """Rotary dims for (time, height, width): Qwen's 1 : 1.5 : 1.5 split of half the head dimension."""
        half = self.hidden_size // self.num_attention_heads // 2
        temporal = half // 4
        height = (half - temporal) // 2
        return [temporal, height, half - temporal - height]


# --------------------------------------------------------------------------- tokenizer corpus

_SENTENCES = (
    "Find x. Round to the nearest tenth.",
    "Find the measure of the angle. Give the answer in degrees.",
    "What is the area of the shaded region?",
    "How many objects in the image are red?",
    "Use the chart to find the difference between the largest and the smallest bar.",
    "The triangle is isosceles, so the two base angles are equal.",
    "The sum of the interior angles of a triangle is 180^\\circ.",
    "By the Pythagorean theorem, c^2 = a^2 + b^2.",
    "The radius of the circle is half of the diameter.",
    "The area of a circle is \\pi r^2 and its circumference is 2 \\pi r.",
    "Opposite angles of a parallelogram are equal, and adjacent angles add up to 180^\\circ.",
    "The perimeter of the rectangle is 2(l + w).",
    "The label next to the segment reads 12, not 21.",
    "Counting again, there are three blue cubes and two green spheres.",
    "The bar for March is taller than the bar for April.",
    "The line passes through the points (0, 2) and (4, 10), so the slope is 2.",
    "Let me look at the figure again to check the length of the side.",
    "Looking at the image again, the angle marked at B is 40^\\circ.",
    "In the figure, point D lies on segment AC and BD is perpendicular to AC.",
    "The chords intersect inside the circle, so the products of their parts are equal.",
    "Similar triangles have proportional sides: \\frac{AB}{DE} = \\frac{BC}{EF}.",
    "So the answer is \\boxed{7.5}.",
    "Therefore x = \\sqrt{3^2 + 4^2} = 5.",
    "The value is \\frac{1}{2} \\times 6 \\times 8 = 24.",
    "Checking the image, the table shows 45 students in total.",
    "The first answer was wrong; the correct value is smaller.",
    "The options are A, B, C and D; the correct choice is B.",
    "Step 1: read the values from the image. Step 2: compute. Step 3: verify.",
    "The angle bisector divides the opposite side in the ratio of the adjacent sides.",
    "sin 30^\\circ = \\frac{1}{2}, cos 60^\\circ = \\frac{1}{2}, tan 45^\\circ = 1.",
    "The volume of the cylinder is \\pi r^2 h.",
    "The mean of the numbers is their sum divided by how many there are.",
    "The probability is \\frac{3}{8}, which is 0.375.",
    "\\angle ABC + \\angle BCD = 180^\\circ because the lines are parallel.",
    "The triangle \\triangle ABC is similar to \\triangle DEF.",
    "x \\geq 3 and x \\leq 7, so x \\neq 0.",
    "The length of \\overline{AB} is about 9.4 cm.",
    "Solve 3x + 5 = 20, so 3x = 15 and x = 5.",
)
_SHAPES = ("triangle", "rectangle", "square", "circle", "trapezoid", "parallelogram", "rhombus", "hexagon")
_THINGS = ("side", "angle", "radius", "height", "base", "diagonal", "segment", "bar", "label", "arc")
_COLORS = ("red", "blue", "green", "yellow", "purple", "gray", "orange", "black")
# Everyday words of math problems, figures and charts, so common words become single tokens.
_WORD_TEXT = """
about above across after again against all along also although among amount and angle angles another answer
any apart approximately are area around arrow as at average axis back bar bars base because been before
begin being below beside between both bottom box boxes but by calculate can case center centimeters chart
check choice choose chord circle circumference clearly closer column columns compare compute cone consider
correct corresponding cost could count counted counting cube cubes curve cylinder data day days decrease
degree degrees denominator describe detail diagram diameter difference different digit direction distance
divide divided does dot dots double down draw drawn each edge edges either else equal equals equation
equilateral estimate even every exactly example exterior face faces factor figure find first five following
for form formula four fraction from function gets give given graph greater grid group half has have he height
here highest horizontal hour hours how hypotenuse identify if image in inches increase inscribed inside
instead integer intercept interior intersect into is isosceles it its itself just keep kilometers known label
labeled labels large largest last least left length less let level like line lines list look looking lower
lowest make many mark marked match maximum may mean measure measured median meters middle minimum minus
minutes missing month more most multiply must near nearest need needs negative next no not note now number
numbers numerator object objects obtuse of off on once one only opposite option options or order other our
out outside over pair parallel part passes per percent perimeter perpendicular picture pie place plot plus
point points polygon positive possible price prism probability problem product pyramid quadrilateral
question radius range rate ratio read reading really reason recheck rectangle red region remaining result
right rise root round row rows rule run same scale second sector see seems segment select shaded shape
shapes shown shows side sides similar since size slope small smaller smallest so solid solve some speed
sphere square step steps straight subtract sum surface table take tall taller tangent tenth than that the
their them then there therefore these they thing third this those three through tick times to top total
triangle true turn twice two unit units up upper use using value values verify vertex vertical vertices
volume was we week weight were what when where which while whole why width will with within without would
x y year years yes z zero
"""
_WORDS = tuple(_WORD_TEXT.split())


def _prose(rng: random.Random) -> str:
    """A pseudo-sentence of math words: meaningless, but it gives BPE the words and their spacing."""
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 16))]
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice((".", "?", ",", ":", ";"))


def _trace(rng: random.Random) -> str:
    """One synthetic Look-Back-shaped trace (the tokenizer sees the tags in every context they take)."""
    a, b = rng.randint(1, 99), rng.randint(1, 99)
    shape, thing, color = rng.choice(_SHAPES), rng.choice(_THINGS), rng.choice(_COLORS)
    first = (
        f"<think> The {shape} has a {thing} of length {a} and another of {b}. "
        f"The {color} {thing} is the one we need, so the result is {a} + {b} = {a + b}. </think>"
    )
    back = rng.choice(
        (
            f"<back> Looking at the image again, the {thing} marked {a} is next to the {color} {shape}. "
            "</back>",
            f"<back> In the figure, the {color} {thing} is labeled {b}, the angle is {a % 90 + 1}^\\circ. "
            "</back>",
            f"<back> Checking the image: there are {a % 9 + 1} {color} objects, not {b % 9 + 2}. </back>",
        )
    )
    second = rng.choice(
        (
            f"<think> So the answer is \\frac{{{a}}}{{{b}}} \\times {b} = {a}. </think>",
            f"<think> With that, \\sqrt{{{a * a}}} = {a}, which confirms the first step. </think>",
            f"<think> The check agrees, so the value stays {a + b}. </think>",
        )
    )
    answer = rng.choice(
        (str(a + b), f"{a}.{b % 10}", f"\\frac{{{a}}}{{{b}}}", f"{a}^\\circ", rng.choice("ABCD"))
    )
    gap = rng.choice((" ", " ", "\n", ""))  # tags follow a space, a newline or nothing
    if rng.random() < 0.3:
        return f"{first}{gap}\\boxed{{{answer}}}"
    return f"{first}{gap}{back}{gap}{second}{gap}\\boxed{{{answer}}}"


def tokenizer_corpus() -> list[str]:
    """The fixed text the tokenizer is trained on (no randomness but a fixed-seed generator)."""
    rng = random.Random(20250703)
    lines = list(_SENTENCES)
    instructions = resource_dir("prompts") / "instructions"
    lines += [p.read_text(encoding="utf-8") for p in sorted(instructions.glob("*.txt"))]
    lines += [" ".join(str(rng.randint(0, 10 ** rng.randint(1, 6))) for _ in range(12)) for _ in range(200)]
    lines += [_trace(rng) for _ in range(3000)]
    lines += [" ".join(_prose(rng) for _ in range(3)) for _ in range(3000)]
    lines += [f"{SYSTEM_PROMPT}\nsystem\nuser\nassistant\n" for _ in range(50)]
    # every tag right after a word, a space and a newline, so each spelling ends up one token
    lines += [
        f"{word}{gap}{tag}"
        for tag in LOOK_BACK_TAGS
        for gap in ("", " ", "\n")
        for word in ("x", "12.", "is")
    ]
    return lines


def train_tokenizer(vocab_size: int):
    """A byte-level BPE over ``tokenizer_corpus()`` with Qwen's special tokens at ids 0..13."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    return tokenizer


# --------------------------------------------------------------------------- builder


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; pass a directory to --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER_FILE).exists():
        raise UsageError(
            f"{out} is not empty and holds no tiny model; choose an empty or new --out directory"
        )


def build_tiny_model(out_dir: str | Path, *, seed: int = 0, config: TinyModelConfig | None = None) -> Path:
    """Write a tiny random-weight Qwen2.5-VL (model, tokenizer, processor) to ``out_dir``; return the path.

    Deterministic: the same seed and config give byte-identical files. An existing directory is
    overwritten only if it holds a previous tiny model.
    """
    import torch
    from transformers import GenerationConfig
    from transformers import Qwen2_5_VLForConditionalGeneration as Model

    from lbdata.train.processor import LbdataQwen2_5_VLProcessor, LbdataQwen2VLImageProcessor

    spec = config or TinyModelConfig()
    out = Path(out_dir)
    _check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer, ids = _tiny_tokenizer(spec)
    torch.manual_seed(seed)
    model = Model(_tiny_model_config(spec, len(tokenizer), ids)).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    model.save_pretrained(out)

    image_processor = LbdataQwen2VLImageProcessor(min_pixels=spec.min_pixels, max_pixels=spec.max_pixels)
    processor = LbdataQwen2_5_VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    processor.save_pretrained(out)

    use_stock_names(out, spec)

    marker = {"builder": "lbdata.train.tiny.build_tiny_model", "seed": seed, "config": asdict(spec)}
    (out / MARKER_FILE).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log.info("wrote a tiny Qwen2.5-VL (%d parameters) to %s", model.num_parameters(), out)
    return out


def _tiny_tokenizer(spec: TinyModelConfig):
    """The locally trained tokenizer, wrapped as a fast tokenizer, and the ids of its special tokens."""
    from transformers import PreTrainedTokenizerFast

    backend = train_tokenizer(spec.vocab_size)
    ids = {token: backend.token_to_id(token) for token in SPECIAL_TOKENS}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    tokenizer.padding_side = "right"
    return tokenizer, ids


def _tiny_model_config(spec: TinyModelConfig, vocab_size: int, ids: dict[str, int]):
    """The ``Qwen2_5_VLConfig`` of the tiny model: Qwen2.5-VL's layout at a few thousandth of its size."""
    from transformers import Qwen2_5_VLConfig

    model_config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": spec.hidden_size,
            "intermediate_size": spec.intermediate_size,
            "num_hidden_layers": spec.num_hidden_layers,
            "num_attention_heads": spec.num_attention_heads,
            "num_key_value_heads": spec.num_key_value_heads,
            "max_position_embeddings": 8192,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": spec.mrope_section,
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": spec.vision_depth,
            "hidden_size": spec.vision_hidden_size,
            "intermediate_size": spec.vision_intermediate_size,
            "num_heads": spec.vision_num_heads,
            "out_hidden_size": spec.hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [spec.vision_depth - 1],
            "tokens_per_second": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    model_config.architectures = ["Qwen2_5_VLForConditionalGeneration"]
    return model_config


def use_stock_names(out: Path, spec: TinyModelConfig) -> None:
    """Rewrite ``config.json`` into the layout of Qwen's own checkpoints, which 4.49 to 5.x all read.

    Text settings go to the top level (4.49 has no ``text_config``; 4.5x and 5.x build their text config
    from them), ``vision_config`` stays nested, and the rotary settings are written in both spellings.
    The processor's files already name stock classes (``LbdataQwen2_5_VLProcessor.save_pretrained``).
    """
    path = out / "config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    text = cfg.pop("text_config")
    text.pop("model_type", None)
    for key, value in text.items():
        cfg.setdefault(key, value)
    rope = cfg.get("rope_parameters") or {}
    cfg["rope_theta"] = rope.get("rope_theta", 1000000.0)
    cfg["rope_scaling"] = {"type": "mrope", "mrope_section": list(spec.mrope_section)}
    cfg["torch_dtype"] = cfg.get("dtype", "float32")
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def parameter_count(model_dir: str | Path) -> int:
    """Number of parameters stored in ``model_dir``'s safetensors files (tied weights counted once)."""
    from safetensors import safe_open

    total = 0
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                total += math.prod(handle.get_slice(name).get_shape())
    return total
