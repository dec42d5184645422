"""What checking untrusted source images costs: images per second, header check vs full intake.

A file source now confines each image path to its roots, opens only regular files, checks the byte
and pixel limits on the header, verifies PNG/JPEG/WebP/GIF without decoding them and converts any
other format to PNG (``lbdata.images``). This prints, for a few typical sizes and formats, the rate
of the old check (read, ``Image.verify``, open again for the size) and of the new intake (``read_image_file`` +
``accept_image``, from disk), and how long a 30000x30000 one-bit PNG bomb takes to be refused.
Ratios measured in one run are what matter on shared cores.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/image_intake.py --n 200
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lbdata.images import ImageRejected, accept_image, read_image_file  # noqa: E402
from tests.test_chaos import bomb_png  # noqa: E402

CASES = [("PNG", (448, 336)), ("PNG", (1344, 1008)), ("JPEG", (1344, 1008)), ("TIFF", (672, 504))]


def picture(fmt: str, size: tuple[int, int]) -> bytes:
    im = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(im)
    for i in range(0, size[0], 37):
        draw.line([(i, 0), (size[0] - i, size[1])], fill=(i % 255, 80, 160), width=3)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def rate(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def old_intake(path: Path) -> None:
    """What a file source did before: read the file whole, verify, open again for the size."""
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        im.verify()
    with Image.open(io.BytesIO(data)) as im:
        _ = im.size, im.format


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="images per measurement")
    n = ap.parse_args().n
    print(f"load average {os.getloadavg()[0]:.2f}; {n} images per row")
    print(f"{'format':<6} {'size':>11} {'KB':>6} {'old/s':>9} {'intake/s':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for fmt, size in CASES:
            data = picture(fmt, size)
            path = root / f"x.{fmt.lower()}"
            path.write_bytes(data)
            old = rate(lambda p=path: old_intake(p), n)
            new = rate(lambda p=path: accept_image(read_image_file(p, [root])), n)
            print(f"{fmt:<6} {size[0]:>5}x{size[1]:<5} {len(data) / 1024:>6.0f} {old:>9.0f} {new:>9.0f} "
                  f"{new / old:>6.2f}")
        bomb = root / "bomb.png"
        bomb.write_bytes(bomb_png())
        t0 = time.perf_counter()
        try:
            accept_image(read_image_file(bomb, [root]))
            verdict = "accepted (wrong)"
        except ImageRejected as exc:
            verdict = exc.reason
        print(f"bomb   30000x30000 {bomb.stat().st_size / 1024:>6.0f} KB: {verdict} in "
              f"{(time.perf_counter() - t0) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
