"""What every problem source yields: ``SourceRow`` for a good row, ``BadRow`` for one that is not."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from lbdata.hashing import sha256_bytes
from lbdata.records import BadRow, ImageRef, Problem


@dataclass(frozen=True)
class SourceRow:
    """A problem and the encoded bytes of its images (parallel to ``problem.images``)."""

    problem: Problem
    images: list[bytes]
    base_trace: str | None = None  # a reasoning trace shipped with the row (insert mode, --trace-col)
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Source(Protocol):
    """A deterministic, re-iterable stream of problems."""

    name: str

    def describe(self) -> dict[str, Any]:
        """Public, secret-free description (spec, revision, column map) for run configs and manifests."""
        ...

    def __iter__(self) -> Iterator[SourceRow | BadRow]: ...


_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}


def image_ref(data: bytes) -> ImageRef:
    """Describe encoded image bytes (raises ``OSError``/``ValueError`` for unreadable data)."""
    with Image.open(io.BytesIO(data)) as im:
        im.verify()
    with Image.open(io.BytesIO(data)) as im:
        width, height = im.size
        ext = _FORMATS.get(im.format or "", "png")
    return ImageRef(sha256=sha256_bytes(data), ext=ext, width=width, height=height)


def encode_png(image: Image.Image) -> bytes:
    """Deterministic PNG bytes for a PIL image (no timestamps, fixed compression)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
