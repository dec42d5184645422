"""`lbdata view` at scale: build time and size of the site of a 100k-trace run, and browser timings.

The run is written straight into a ledger for speed: a pool of real problems, images and scene-teacher
traces (``generate``) is replicated to ``--traces`` traces over ``--traces / 2`` problems that share
the pool's images; verdicts are drawn (80 % accepted, the rest with one or two reason codes) and stored
under the current validator config, so the build reads them like those of ``lbdata validate``.

Measured:
  - build: a cold build (every thumbnail made) and a rebuild (thumbnails kept), each in a fresh
    process (peak RSS is the build's own);
  - size: the whole site, and its parts (data shards, index, images, thumbnails, plots);
  - browser (Debian's chromium, headless, the site opened from disk): first contentful paint of
    samples.html and index.html (performance.getEntriesByType('paint')), time until the first sample
    is shown, filtering by a reason, and a text search that scans every shard.

    .venv/bin/python benchmarks/view.py [--traces 100000] [--pool 1000] [--shard-size 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

REASONS = ["back_filler", "back_empty", "answer_wrong", "back_copy", "no_rethink", "back_before_reasoning",
           "malformed_tags", "back_not_visual"]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def write_run(run_dir: Path, traces: int, pool: int) -> dict:
    """A run of ``traces`` traces over ``traces // 2`` problems whose images come from a pool of ``pool``."""
    from lbdata.generate import GenerateConfig, generate
    from lbdata.ledger import Ledger
    from lbdata.records import Verdict
    from lbdata.validate import ValidationConfig

    t0 = time.perf_counter()
    pool_dir = run_dir.parent / "pool"
    generate(GenerateConfig(limit=pool), pool_dir)
    with Ledger.open(pool_dir) as src:
        problems = list(src.iter_problems())
        by_problem: dict[str, list] = {}
        for t in src.iter_traces():
            by_problem.setdefault(t.problem_id, []).append(t)
        images = {ref.filename: src.image_bytes(ref.filename) for p in problems for ref in p.images}
    pool_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    rng = random.Random(0)
    config_hash = ValidationConfig().config_hash
    with Ledger.create(run_dir) as ledger:
        for name, data in images.items():
            ledger.put_image(name, data)
        with ledger.transaction():
            n = 0
            k = 0
            while n < traces:
                base = problems[k % len(problems)]
                problem = base.model_copy(update={"id": f"{base.id}-r{k}"})
                ledger.put_problem(problem, [images[ref.filename] for ref in problem.images])
                for t in by_problem[base.id]:
                    if n >= traces:
                        break
                    trace = t.model_copy(update={"id": f"{t.id}-r{k}", "problem_id": problem.id})
                    ledger.put_trace(trace)
                    if rng.random() < 0.8:
                        reasons: list[str] = []
                    else:
                        reasons = sorted(rng.sample(REASONS, rng.choice((1, 1, 2))))
                    ledger.put_verdict(Verdict(
                        trace_id=trace.id, accepted=not reasons, reasons=reasons, answer=problem.answer,
                        scores={"answer_match": 0.0 if "answer_wrong" in reasons else 1.0}, config_hash=config_hash,
                    ))
                    n += 1
                k += 1
    return {"pool_s": pool_s, "ledger_s": time.perf_counter() - t0, "problems": k, "images": len(images)}


def build_child(run_dir: str, out_dir: str, shard_size: int) -> None:
    from lbdata.view import ViewConfig, build_run_view

    s = build_run_view(run_dir, out_dir, config=ViewConfig(shard_size=shard_size))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"elapsed_s": s.elapsed_s, "rows": s.rows, "shards": s.shards, "images": s.images,
                      "thumbnails_made": s.thumbnails_made, "bytes": s.bytes, "peak_rss_mb": rss}))


def build(run_dir: Path, out_dir: Path, shard_size: int) -> dict:
    cmd = [sys.executable, __file__, "--child-build", str(run_dir), str(out_dir), str(shard_size)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def dir_size(path: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in path.glob(pattern) if p.is_file())


def browser_timings(site: Path, reason: str, query: str) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                   viewport={"width": 1400, "height": 900})
        try:
            for name in ("samples", "index"):
                page = ctx.new_page()
                page.goto((site / f"{name}.html").as_uri(), wait_until="load")
                page.wait_for_timeout(200)
                fcp = page.evaluate(
                    "(performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint') || {})"
                    ".startTime"
                )
                out[f"{name}_fcp_ms"] = fcp
                if name == "samples":
                    page.wait_for_selector("#sample[data-state=ready]", timeout=60_000)
                    out["first_sample_ms"] = page.evaluate(
                        "new Promise(r => requestAnimationFrame(() => r(performance.now())))"
                    )
                    t = page.evaluate("performance.now()")
                    page.select_option("#filter-reason", reason)
                    page.wait_for_selector("#sample[data-state=ready]", timeout=60_000)
                    page.wait_for_selector("#count[data-state=ready]")
                    out["filter_ms"] = page.evaluate("performance.now()") - t
                    out["filter_count"] = int(page.get_attribute("#count", "data-count"))
                    page.select_option("#filter-reason", "")
                    page.wait_for_selector("#count[data-state=ready]")
                    t = page.evaluate("performance.now()")
                    page.fill("#search", query)
                    page.press("#search", "Enter")
                    page.wait_for_selector("#count[data-state=ready]", timeout=300_000)
                    out["search_ms"] = page.evaluate("performance.now()") - t
                    out["search_count"] = int(page.get_attribute("#count", "data-count"))
                    out["heap_mb"] = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize / 1e6 : null")
                page.close()
        finally:
            ctx.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--pool", type=int, default=1000, help="distinct problems and images behind the traces")
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--child-build", nargs=3, metavar=("RUN", "OUT", "SHARD_SIZE"))
    args = ap.parse_args()
    if args.child_build:
        build_child(args.child_build[0], args.child_build[1], int(args.child_build[2]))
        return

    with tempfile.TemporaryDirectory() as tmp:
        run_dir, site = Path(tmp) / "run", Path(tmp) / "site"
        made = write_run(run_dir, args.traces, args.pool)
        cold = build(run_dir, site, args.shard_size)
        warm = build(run_dir, site, args.shard_size)
        parts = {
            "data shards": dir_size(site / "data", "shard-*.js"),
            "index.js": dir_size(site / "data", "index.js"),
            "images": dir_size(site / "images"),
            "thumbnails": dir_size(site / "thumbs"),
            "plots": dir_size(site / "plots"),
            "html, js, css": dir_size(site, "*.html") + dir_size(site / "assets"),
        }
        # "-r7777" is in the ids of the two traces of problem copy 7777 only: a search that must read every shard
        browser = browser_timings(site, "back_empty", "-r7777") if Path(CHROMIUM).exists() else {}

    mb = 1e6
    print(f"lbdata view: {cold['rows']:,} traces over {made['problems']:,} problems and {made['images']:,} distinct "
          f"images, shards of {args.shard_size:,} rows ({cold['shards']} shards); 1 core (OMP_NUM_THREADS=1)\n")
    print("| step | value |")
    print("|---|---:|")
    print(f"| write the ledger (setup, not the viewer) | {made['pool_s'] + made['ledger_s']:.1f} s |")
    print(f"| build, cold ({cold['thumbnails_made']:,} thumbnails made) | {cold['elapsed_s']:.1f} s "
          f"({cold['rows'] / cold['elapsed_s']:,.0f} traces/s) |")
    print(f"| rebuild ({warm['thumbnails_made']} thumbnails made) | {warm['elapsed_s']:.1f} s "
          f"({warm['rows'] / warm['elapsed_s']:,.0f} traces/s) |")
    print(f"| peak RSS of a build | {max(cold['peak_rss_mb'], warm['peak_rss_mb']):.0f} MB |")
    print(f"| site size | {cold['bytes'] / mb:.1f} MB |")
    for name, size in parts.items():
        print(f"| &nbsp;&nbsp;{name} | {size / mb:.1f} MB |")
    print(f"| &nbsp;&nbsp;one data shard (mean) | {parts['data shards'] / cold['shards'] / mb:.2f} MB |")
    if browser:
        print(f"| samples.html: first contentful paint | {browser['samples_fcp_ms']:.0f} ms |")
        print(f"| samples.html: first sample shown | {browser['first_sample_ms']:.0f} ms |")
        print(f"| index.html (overview): first contentful paint | {browser['index_fcp_ms']:.0f} ms |")
        print(f"| filter by reason ({browser['filter_count']:,} matches, sample shown) | {browser['filter_ms']:.0f} ms |")
        print(f"| text search over all {cold['shards']} shards ({browser['search_count']} matches) | "
              f"{browser['search_ms'] / 1000:.1f} s |")
        if browser.get("heap_mb"):
            print(f"| JS heap after the search | {browser['heap_mb']:.0f} MB |")
    else:
        print(f"| browser timings | skipped: {CHROMIUM} is not installed |")


if __name__ == "__main__":
    main()
