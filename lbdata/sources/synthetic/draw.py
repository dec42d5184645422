"""Drawing helpers shared by the synthetic families: a canvas, named colours, fonts, fast PNG bytes.

Images are drawn in RGB (antialiased text), then mapped onto one fixed 256-colour palette and saved
as palette PNGs: exact for the flat fills the families use, about four times faster to encode than
RGB, and byte-identical across processes.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

from PIL import Image, ImageDraw, ImageFont

from lbdata.sources.base import encode_png

RGB = tuple[int, int, int]

# Colours that questions and scene facts name. Distinct hues, so a reader can tell them apart.
NAMED: dict[str, RGB] = {
    "red": (214, 39, 40),
    "blue": (31, 100, 200),
    "green": (40, 150, 50),
    "yellow": (235, 190, 0),
    "purple": (140, 80, 190),
    "orange": (245, 120, 10),
    "brown": (140, 86, 50),
    "pink": (230, 110, 180),
    "teal": (0, 140, 140),
    "gray": (120, 120, 120),
}
# Neutral colours for axes, text, backgrounds and table shading.
INK: dict[str, RGB] = {
    "black": (0, 0, 0),
    "dark": (45, 45, 55),
    "grid": (200, 200, 205),
    "white": (255, 255, 255),
    "paper_cream": (252, 248, 236),
    "paper_blue": (240, 245, 252),
    "paper_gray": (244, 244, 244),
    "paper_green": (241, 249, 240),
    "header_blue": (60, 90, 150),
    "header_green": (50, 120, 90),
    "header_gray": (90, 90, 100),
    "band": (232, 236, 244),
}
BACKGROUNDS = ("white", "paper_cream", "paper_blue", "paper_gray", "paper_green")
HEADERS = ("header_blue", "header_green", "header_gray")


def _palette() -> list[int]:
    colours: list[RGB] = []
    for rgb in [*NAMED.values(), *INK.values()]:
        for t in (0.0, 0.25, 0.5, 0.75):  # blends toward white and black, for text antialiasing
            colours.append(tuple(round(c + (255 - c) * t) for c in rgb))  # type: ignore[arg-type]
            if t:
                colours.append(tuple(round(c * (1 - t)) for c in rgb))  # type: ignore[arg-type]
    colours += [(g, g, g) for g in range(0, 256, 8)]
    unique = list(dict.fromkeys(colours))[:256]
    unique += [(0, 0, 0)] * (256 - len(unique))
    return [c for rgb in unique for c in rgb]


@lru_cache(maxsize=1)
def _palette_image() -> Image.Image:
    pal = Image.new("P", (1, 1))
    pal.putpalette(_palette())
    return pal


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's embedded default font (Aileron) at ``size`` pixels; nothing is downloaded."""
    return ImageFont.load_default(size=size)  # type: ignore[return-value]


def colour(name: str) -> RGB:
    return NAMED[name] if name in NAMED else INK[name]


class Canvas:
    """An RGB drawing surface that ends as deterministic palette-PNG bytes."""

    def __init__(self, width: int, height: int, background: str = "white"):
        self.width = width
        self.height = height
        self.background = background
        self.image = Image.new("RGB", (width, height), colour(background))
        self.draw = ImageDraw.Draw(self.image)

    def text(self, xy: tuple[float, float], text: str, size: int, fill: str = "black", anchor: str = "mm",
             boxed: bool = False) -> None:
        """Draw text; ``boxed`` clears a background-coloured box under it first (labels on lines)."""
        if boxed:
            x0, y0, x1, y1 = self.draw.textbbox(xy, text, font=font(size), anchor=anchor)
            self.draw.rectangle((x0 - 2, y0 - 2, x1 + 2, y1 + 2), fill=colour(self.background))
        self.draw.text(xy, text, fill=colour(fill), font=font(size), anchor=anchor)

    def text_width(self, text: str, size: int) -> float:
        return font(size).getlength(text)

    def line(self, points: list[tuple[float, float]], fill: str = "black", width: int = 1) -> None:
        self.draw.line(points, fill=colour(fill), width=width)

    def rect(self, box: tuple[float, float, float, float], fill: str | None, outline: str | None = None,
             width: int = 1) -> None:
        self.draw.rectangle(box, fill=colour(fill) if fill else None,
                            outline=colour(outline) if outline else None, width=width)

    def polygon(self, points: list[tuple[float, float]], fill: str | None, outline: str | None = None,
                width: int = 1) -> None:
        self.draw.polygon(points, fill=colour(fill) if fill else None,
                          outline=colour(outline) if outline else None, width=width)

    def circle(self, centre: tuple[float, float], radius: float, fill: str | None, outline: str | None = None,
               width: int = 1) -> None:
        x, y = centre
        self.draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour(fill) if fill else None,
                          outline=colour(outline) if outline else None, width=width)

    def arc(self, centre: tuple[float, float], radius: float, start: float, end: float, fill: str = "black",
            width: int = 1) -> None:
        """An arc from ``start`` to ``end`` degrees, clockwise from three o'clock (image coordinates)."""
        x, y = centre
        self.draw.arc((x - radius, y - radius, x + radius, y + radius), start, end, fill=colour(fill), width=width)

    def png(self) -> bytes:
        pal = self.image.quantize(palette=_palette_image(), dither=Image.Dither.NONE)
        return encode_png(pal)


def unit(dx: float, dy: float) -> tuple[float, float]:
    n = math.hypot(dx, dy) or 1.0
    return dx / n, dy / n
