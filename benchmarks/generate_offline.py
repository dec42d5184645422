"""Offline generation speed and memory: synthetic source + scene teacher into a fresh run ledger.

Prints problems/s over 10k problems (targets: >= 200/s on one core, including image rendering and
ledger writes) and peak RSS at 10k and 50k problems (target: flat, within 20 %). Each size runs in
its own process so peak RSS is its own.

    .venv/bin/python benchmarks/generate_offline.py [--sizes 10000,50000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def child(n: int, run_dir: str) -> None:
    from lbdata.generate import GenerateConfig, generate

    t0 = time.perf_counter()
    summary = generate(GenerateConfig(limit=n, concurrency=8), run_dir)
    elapsed = time.perf_counter() - t0
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "n": n,
        "elapsed_s": elapsed,
        "cpu_s": cpu.ru_utime + cpu.ru_stime,
        "traces": sum(summary.traces_new.values()),
        "peak_rss_mb": cpu.ru_maxrss / 1024,
    }))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,50000")
    ap.add_argument("--child", type=int)
    ap.add_argument("--run-dir")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.run_dir)
        return
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--child", str(n), "--run-dir", os.path.join(tmp, "run")]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    print("| problems | traces | wall s | cpu s | problems/s (wall) | problems/s (cpu) | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']} | {r['traces']} | {r['elapsed_s']:.1f} | {r['cpu_s']:.1f} | {r['n'] / r['elapsed_s']:.0f} | "
              f"{r['n'] / r['cpu_s']:.0f} | {r['peak_rss_mb']:.0f} |")
    if len(rows) > 1:
        growth = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"] - 1
        print(f"\npeak RSS growth {rows[0]['n']} -> {rows[-1]['n']}: {growth:+.1%} (target: within 20 %)")
    print(f"target: >= 200 problems/s; measured {rows[0]['n'] / rows[0]['elapsed_s']:.0f}/s wall at {rows[0]['n']}")


if __name__ == "__main__":
    main()
