"""Write the static site: paged data shards, a compact filter index, images and thumbnails, assets.

Layout of a site folder::

    index.html            overview: counts, plots (or the diff of two versions)
    samples.html          the sample browser (assets/view.js)
    assets/view.js, assets/view.css
    data/index.js         LB.index({...}): facet codes of every row, for filtering and counts
    data/shard-0000.js    LB.shard(0, [...]): rows 0 … shard_size-1, loaded on demand
    images/<sha256>.<ext> each image once
    thumbs/<sha256>.png|jpg  a small thumbnail per image, made once (kept across rebuilds): PNG when
                          it has at most 256 colours (diagrams, charts stay crisp), else JPEG
    plots/*.png           matplotlib figures
    lbdata-view.json      what was built (kind, title, rows, shards); marks the folder as a site

Data files are JavaScript that call a registration function, not JSON, because browsers refuse
``fetch()`` of ``file://`` URLs but run ``<script src>`` from disk. Nothing refers to the network.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lbdata.errors import UsageError
from lbdata.records import ImageRef
from lbdata.view.rows import ViewRow
from lbdata.workspace import ensure_writable_dir, make_partial_dir, replace_dir

log = logging.getLogger(__name__)

MARKER = "lbdata-view.json"
ASSETS = ("view.js", "view.css")
_CONTENT_FILE = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,5}$")


@dataclass(frozen=True)
class Facet:
    """A filter of the sample browser: ``key`` names the row field; ``multi`` for list fields (reasons)."""

    name: str
    label: str
    key: str
    multi: bool = False


@dataclass
class _FacetData:
    facet: Facet
    values: dict[str, int] = field(default_factory=dict)
    codes: list[int] = field(default_factory=list)
    rows: list[list[int]] = field(default_factory=list)

    def add(self, n: int, value: Any) -> None:
        if self.facet.multi:
            for v in value or []:
                code = self._code(str(v))
                self.rows[code].append(n)
        else:
            self.codes.append(self._code("" if value is None else str(value)))

    def _code(self, value: str) -> int:
        code = self.values.get(value)
        if code is None:
            code = self.values[value] = len(self.values)
            self.rows.append([])
        return code

    def export(self) -> dict[str, Any]:
        """Values sorted by name; codes remapped to match."""
        order = sorted(self.values, key=lambda v: (v == "", v))
        remap = {self.values[v]: i for i, v in enumerate(order)}
        out: dict[str, Any] = {"name": self.facet.name, "label": self.facet.label, "values": order,
                               "multi": self.facet.multi}
        if self.facet.multi:
            out["rows"] = [self.rows[self.values[v]] for v in order]
        else:
            codes = [remap[c] for c in self.codes]
            counts = [0] * len(order)
            for c in codes:
                counts[c] += 1
            out["codes"] = codes
            out["counts"] = counts
        return out


@dataclass
class SiteStats:
    """What a build wrote."""

    rows: int = 0
    shards: int = 0
    images: int = 0
    thumbnails_made: int = 0
    missing_images: int = 0


class SiteWriter:
    """Streams rows into shards, copies each image once and makes its thumbnail, writes the index.

    The site is written into a hidden sibling of ``out_dir`` (seeded with the images and thumbnails of
    an earlier site there, so they are not made again) and renamed into place by ``publish``; used as a
    context manager, a writer that did not publish removes its work. A killed or failed build leaves
    the earlier site, if any, untouched, and nothing that stops the next one.
    """

    def __init__(self, out_dir: Path, facets: list[Facet], *, shard_size: int, thumb_px: int):
        self.final = check_out_dir(out_dir)
        self.out = make_partial_dir(self.final)
        self._seed()
        self.facets = [_FacetData(f) for f in facets]
        self.shard_size = shard_size
        self.thumb_px = thumb_px
        self.stats = SiteStats()
        self._buffer: list[dict[str, Any]] = []
        self._images: dict[str, str | None] = {}  # sha256 -> thumbnail file name (None: unreadable)
        for sub in ("data", "images", "thumbs", "plots", "assets"):
            (self.out / sub).mkdir(exist_ok=True)
        for old in (self.out / "data").glob("*.js"):
            old.unlink()
        for old in (self.out / "plots").glob("*.png"):
            old.unlink()

    def _seed(self) -> None:
        for sub in ("images", "thumbs"):
            old = self.final / sub
            if not (self.final / MARKER).exists() or not old.is_dir():
                continue
            (self.out / sub).mkdir(exist_ok=True)
            for path in old.iterdir():
                if _CONTENT_FILE.match(path.name) and path.is_file():
                    with contextlib.suppress(OSError):
                        _link_or_copy(path, self.out / sub / path.name)

    def publish(self) -> Path:
        """Move the finished site into place (replacing an earlier one); returns its folder."""
        if self.out != self.final:
            replace_dir(self.out, self.final)
            self.out = self.final
        return self.out

    def discard(self) -> None:
        if self.out != self.final:
            shutil.rmtree(self.out, ignore_errors=True)

    def __enter__(self) -> SiteWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def add(self, row: ViewRow) -> None:
        n = self.stats.rows
        if row.data["n"] != n:
            raise ValueError(f"rows must be numbered 0, 1, … in order; got {row.data['n']} at {n}")
        for fd in self.facets:
            fd.add(n, row.data.get(fd.facet.key))
        for entry, (ref, src) in zip(row.data["images"], row.images, strict=True):
            entry.append(self._image(ref, src))
        self._buffer.append(row.data)
        self.stats.rows += 1
        if len(self._buffer) >= self.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        no = self.stats.shards
        body = json.dumps(self._buffer, ensure_ascii=False, separators=(",", ":"))
        _write_text(self.out / "data" / shard_name(no), f"LB.shard({no},{body});\n")
        self.stats.shards += 1
        self._buffer = []

    def _image(self, ref: ImageRef, src: Path | bytes) -> str | None:
        """Copy an image once and make its thumbnail; returns the thumbnail's file name."""
        if ref.sha256 in self._images:
            return self._images[ref.sha256]
        full = self.out / "images" / ref.filename
        thumbs = self.out / "thumbs"
        name = next((f"{ref.sha256}.{e}" for e in ("png", "jpg") if (thumbs / f"{ref.sha256}.{e}").exists()), None)
        try:
            if not full.exists():
                if isinstance(src, bytes):
                    _write_bytes(full, src)
                else:
                    _link_or_copy(src, full)
            if name is None:
                name = make_thumbnail(full, thumbs, ref.sha256, self.thumb_px)
                self.stats.thumbnails_made += 1
            self.stats.images += 1
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # a full disk is the site's failure, not the image's
                raise
            name = None
            self.stats.missing_images += 1
            log.warning("image %s cannot be copied or read (%s); its samples show no picture", ref.filename, exc)
        self._images[ref.sha256] = name
        return name

    def finish(self, meta: dict[str, Any]) -> None:
        """Write the last shard, the index, the assets, and drop images no row refers to any more."""
        self._flush()
        index = {
            **meta,
            "n": self.stats.rows,
            "shard_size": self.shard_size,
            "shards": self.stats.shards,
            "facets": [fd.export() for fd in self.facets],
        }
        body = json.dumps(index, ensure_ascii=False, separators=(",", ":"))
        _write_text(self.out / "data" / "index.js", f"LB.index({body});\n")
        for name in ASSETS:
            _write_text(self.out / "assets" / name, asset_text(name))
        for sub in ("images", "thumbs"):
            for path in (self.out / sub).iterdir():
                if _CONTENT_FILE.match(path.name) and path.name.split(".")[0] not in self._images:
                    path.unlink()
        marker = {**meta, "rows": self.stats.rows, "shards": self.stats.shards, "images": self.stats.images}
        _write_text(self.out / MARKER, json.dumps(marker, indent=2, sort_keys=True) + "\n")


def shard_name(no: int) -> str:
    return f"shard-{no:04d}.js"


def asset_text(name: str) -> str:
    return resources.files("lbdata.view").joinpath("assets", name).read_text(encoding="utf-8")


def check_out_dir(out_dir: Path) -> Path:
    """Refuse a file, or a non-empty folder that is not an earlier lbdata site; make the parent folder."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file; pass --out with a folder for the site")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise UsageError(
            f"{out_dir} is not empty and holds no lbdata site; pass --out with an empty or new folder"
        )
    ensure_writable_dir(out_dir.parent, "site folder")
    return out_dir


def make_thumbnail(src: Path, folder: Path, sha256: str, px: int) -> str:
    """Write ``<sha256>.png`` or ``.jpg`` into ``folder``, no larger than ``px`` on either side; returns its name.

    Transparency goes on white. An image of at most 256 colours (a diagram, a chart) becomes a palette
    PNG, crisp and small; anything else a JPEG.
    """
    from PIL import Image

    with Image.open(src) as im:
        im.draft("RGB", (px, px))
        im.thumbnail((px, px))
        if im.mode in ("RGBA", "LA", "P", "PA"):
            rgba = im.convert("RGBA")
            bg = Image.new("RGB", rgba.size, "white")
            bg.paste(rgba, mask=rgba.getchannel("A"))
            im = bg
        elif im.mode != "RGB":
            im = im.convert("RGB")
        colours = im.getcolors(256)
        name = f"{sha256}.{'png' if colours else 'jpg'}"
        tmp = folder / f"{name}.{os.getpid()}.tmp"
        if colours:
            im.quantize(colors=len(colours), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                tmp, "PNG"
            )
        else:
            im.save(tmp, "JPEG", quality=82)
    tmp.replace(folder / name)
    return name


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + f".{os.getpid()}.tmp")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    tmp.replace(dst)


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_text(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))


def site_size(out_dir: Path) -> int:
    """Bytes of every file under the site folder."""
    return sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
