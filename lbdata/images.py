"""One image-resizing policy (a pixel band) shared by teachers, training and evaluation.

Qwen2-VL-family models see an image as a grid of 14-pixel patches merged 2×2 into tokens, so each side
is rounded to a multiple of ``factor = 28`` and the area is kept inside ``[min_pixels, max_pixels]``
with the aspect ratio preserved. Whatever sends an image to a model — a teacher request, a training
example, an evaluation prompt — resizes it here, so all of them see the same pixels and pay the same
number of image tokens. Pillow only; no torch.
"""

from __future__ import annotations

import math

from PIL import Image

from lbdata.errors import UsageError

# The pixel band of Qwen2.5-VL's own processor (min 4 tokens, max 16384 tokens at factor 28).
DEFAULT_MIN_PIXELS = 56 * 56
DEFAULT_MAX_PIXELS = 28 * 28 * 16384
MAX_ASPECT_RATIO = 200


def fit_pixels(
    width: int, height: int, min_pixels: int, max_pixels: int, factor: int = 28
) -> tuple[int, int]:
    """Return ``(width, height)``, each a multiple of ``factor``, area within ``[min_pixels, max_pixels]``.

    Same rounding as Qwen2-VL's ``smart_resize``: round each side to the nearest multiple; if the area
    is too large scale down (floor), if too small scale up (ceil); never below one ``factor``.
    """
    if width <= 0 or height <= 0:
        raise UsageError(f"image size must be positive, got {width}x{height}; check the image file")
    if factor <= 0 or min_pixels <= 0 or max_pixels < min_pixels or max_pixels < factor * factor:
        raise UsageError(
            f"invalid pixel band min_pixels={min_pixels} max_pixels={max_pixels} factor={factor}: "
            f"need 0 < min_pixels <= max_pixels and max_pixels >= factor² ({factor * factor})"
        )
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise UsageError(
            f"image {width}x{height} has an aspect ratio above {MAX_ASPECT_RATIO}; crop or pad it first"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white (as the Hugging Face image processors do)."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def resize_image(image: Image.Image, min_pixels: int, max_pixels: int, factor: int = 28) -> Image.Image:
    """Convert to RGB and resize (bicubic) into the pixel band; an image already in it is returned as RGB."""
    rgb = to_rgb(image)
    size = fit_pixels(rgb.width, rgb.height, min_pixels, max_pixels, factor)
    if size == (rgb.width, rgb.height):
        return rgb
    return rgb.resize(size, resample=Image.Resampling.BICUBIC)
