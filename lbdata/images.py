"""One image-resizing policy (a pixel band) shared by teachers, training and evaluation.

Qwen2-VL-family models see an image as a grid of 14-pixel patches merged 2×2 into tokens, so each side
is rounded to a multiple of ``factor = 28`` and the area is kept inside ``[min_pixels, max_pixels]``
with the aspect ratio preserved. Whatever sends an image to a model — a teacher request, a training
example, an evaluation prompt — resizes it here, so all of them see the same pixels and pay the same
number of image tokens. Pillow only; no torch.
"""

from __future__ import annotations

import io
import math
import os
import stat
import struct
import warnings
from pathlib import Path

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


# ---------------------------------------------------------------------------- images from untrusted sources
# A source row names its image by bytes or by path; either may be hostile (a decompression bomb, a
# device, a FIFO, a file outside the dataset, a PostScript program). ``read_image_file`` and
# ``accept_image`` turn every such case into an ``ImageRejected`` with a stable reason code, which
# sources record as a bad row, so one bad image never stops a run.

DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192
"""Largest image accepted from a source, in pixels (width × height), checked before decoding."""
DEFAULT_MAX_IMAGE_BYTES = 64 * 1024 * 1024
"""Largest encoded image accepted from a source, in bytes, checked before reading it whole."""
PASS_THROUGH = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
"""Formats every OpenAI-compatible server takes: their bytes go out as they are, with their own MIME type."""
DECODABLE = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM", "TGA")
"""Formats decoded (and converted to PNG when not in ``PASS_THROUGH``); Pillow tries no other plug-in.
Not ICO: Pillow decodes an icon while opening it, at the size of the image inside (not the size the
icon declares), so its pixels cannot be counted before decoding."""
_ICO_MAGIC = b"\x00\x00\x01\x00"
_REFUSED_MAGIC = ((b"%!PS", "PostScript"), (b"\xc5\xd0\xd3\xc6", "EPS"), (b"%PDF", "PDF"))


class ImageRejected(ValueError):
    """An image a source row cannot use; ``reason`` is the bad-row code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def read_image_file(path: Path, roots: list[Path], *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
                    flag: str = "--image-root DIR") -> bytes:
    """The bytes of the image file ``path``, which must resolve (symlinks included) inside one of ``roots``.

    Only regular files are opened (a FIFO, a device, a folder is ``not_a_regular_file``), without
    blocking, and at most ``max_bytes`` + 1 bytes are read.
    """
    try:
        real = Path(os.path.realpath(path, strict=True))
    except (FileNotFoundError, NotADirectoryError):
        raise ImageRejected("image_not_found", f"image file {str(path)!r} not found") from None
    except OSError as exc:  # a symlink loop, a permission error on the way
        raise ImageRejected("unreadable_image", f"cannot resolve {str(path)!r} ({exc.strerror or exc})") from None
    if not any(real.is_relative_to(os.path.realpath(root)) for root in roots):
        where = ", ".join(str(r) for r in roots) or "no folder"
        raise ImageRejected(
            "image_outside_root",
            f"image {str(path)!r} resolves to {str(real)!r}, outside the allowed folders ({where}); "
            f"pass {flag} to allow a folder",
        )
    try:
        # resolved already: a symlink here now was swapped in after the check, and is refused
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(real, flags)
    except OSError as exc:
        raise ImageRejected("unreadable_image", f"cannot open {str(path)!r} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ImageRejected("not_a_regular_file", f"{str(path)!r} is not a regular file (a device, FIFO or folder)")
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRejected("image_too_large", f"{str(path)!r} is larger than {max_bytes:,} bytes")
    return data


def accept_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
                 max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> tuple[bytes, str, tuple[int, int]]:
    """``(bytes, ext, (width, height))`` of an image safe to store and send.

    Size limits are checked on the header, before decoding. PNG, JPEG, WebP and GIF keep their bytes
    and are only verified (Pillow's structural check: PNG chunk checksums, a cut-short file), which
    costs a small fraction of a decode; other decodable formats are decoded and converted to PNG;
    PostScript, EPS and PDF are refused.
    """
    if len(data) > max_bytes:
        raise ImageRejected("image_too_large", f"{len(data):,} bytes, more than {max_bytes:,}")
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels  # the user allowed larger images than Pillow's default guard
    head = data[:32].lstrip()
    for magic, name in _REFUSED_MAGIC:
        if head.startswith(magic):
            raise ImageRejected("unsupported_image_format",
                                f"{name} is refused (it is a program, not a picture); convert it to PNG first")
    if data.startswith(_ICO_MAGIC):
        raise ImageRejected("unsupported_image_format", "ICO is refused (an icon is decoded before its size can be "
                                                        "checked); convert it to PNG first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=DECODABLE) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageRejected(
                        "image_too_large",
                        f"{width}x{height} is {width * height:,} pixels, more than {max_pixels:,}; "
                        "raise --max-image-pixels to allow it",
                    )
                fmt = im.format or ""
                if fmt in PASS_THROUGH:  # sent as they are: check their structure, without decoding pixels
                    im.verify()
                    return data, PASS_THROUGH[fmt], (width, height)
                im.load()
                return _to_png(im), "png", (width, height)
        except ImageRejected:
            raise
        except Image.DecompressionBombError as exc:  # above Pillow's own limit, twice its warning size
            raise ImageRejected("image_too_large", f"{exc}; raise --max-image-pixels to allow it") from None
        except (OSError, ValueError, SyntaxError, EOFError, struct.error, MemoryError) as exc:
            raise ImageRejected("unreadable_image", f"{type(exc).__name__}: {exc}") from None


def sniff_mime(data: bytes) -> str | None:
    """The MIME type of PNG, JPEG, GIF or WebP bytes, read from their signature; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _to_png(im: Image.Image) -> bytes:
    if im.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
