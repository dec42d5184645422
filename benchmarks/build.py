"""Corpus build speed and memory: rows per second and peak RSS at growing sizes.

For each size N a run with N/2 problems (one distinct PNG each) and N traces (semantic_back and
solution_back, all accepted) is written straight into a ledger, then ``build_corpus`` runs in a fresh
process whose peak RSS is read from ``getrusage``. Memory should stay flat as N grows: the dedup, split
and mix bookkeeping lives in a temporary SQLite database and rows stream to Parquet in row groups of
100. The version id is printed so runs of the same sizes can be compared across code changes (same
inputs, same id). The machine's load average is printed too: timings on shared cores depend on it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/build.py --sizes 10000,50000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_MAKE = r"""
import io, random, sys
from PIL import Image, ImageDraw
from lbdata.hashing import sha256_bytes
from lbdata.ledger import Ledger
from lbdata.records import ImageRef, Problem, TeacherInfo, Trace, Verdict
from lbdata.validate import ValidationConfig

run_dir, n_traces = sys.argv[1], int(sys.argv[2])
teacher = TeacherInfo(backend="bench", model="bench-1", params={})
chash = ValidationConfig().config_hash
rng = random.Random(0)
lead = "<think> The chart has several bars and I need the height of the bar labelled {c} in figure {i}. {extra} </think> "
back = "<back> Looking at the image again, bar {c} reaches the grid line marked {a}, above the other bars. </back> "
tail = "<think> So bar {c} has height {a}, as the check showed. </think> \\boxed{{{a}}}"
verdicts = []
with Ledger.create(run_dir) as ledger, ledger.transaction():
    for i in range(n_traces // 2):
        im = Image.new("RGB", (128, 96), (i % 251, (i // 251) % 251, 90))
        d = ImageDraw.Draw(im)
        for k in range(6):
            h = rng.randint(5, 80)
            d.rectangle([8 + 20 * k, 90 - h, 22 + 20 * k, 90], fill=(rng.randint(0, 255), 40, 160))
        buf = io.BytesIO(); im.save(buf, format="PNG"); data = buf.getvalue()
        ref = ImageRef(sha256=sha256_bytes(data), ext="png", width=128, height=96)
        a = str(rng.randint(1, 99)); c = "ABCDEF"[i % 6]
        p = Problem(id=f"bench:{i}", images=[ref], question=f"What is the height of bar {c} in figure {i}?",
                    answer=a, source="bench")
        ledger.put_problem(p, [data])
        extra = " ".join(rng.choice(["I", "read", "the", "axis", "scale", "first", "then", "the", "bars"])
                         for _ in range(rng.randint(10, 60)))
        for v in ("semantic_back", "solution_back"):
            tid = Trace.make_id(problem_id=p.id, variant=v, mode="write", teacher=teacher, prompt_hash="b0")
            text = lead.format(c=c, i=i, extra=extra) + back.format(c=c, a=a) + tail.format(c=c, a=a)
            ledger.put_trace(Trace(id=tid, problem_id=p.id, variant=v, teacher=teacher, prompt_hash="b0", text=text))
            verdicts.append(Verdict(trace_id=tid, accepted=True, config_hash=chash))
with Ledger.open(run_dir) as ledger:
    ledger.put_verdicts(verdicts)
"""

_BUILD = r"""
import json, resource, sys, time
import datasets, pyarrow  # imported before the clock starts: their memory is the baseline
from lbdata.corpus import build_corpus
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
res = build_corpus([sys.argv[1]], "bench", home=sys.argv[2])
t1 = time.perf_counter()
again = build_corpus([sys.argv[1]], "bench", home=sys.argv[2])
t2 = time.perf_counter()
rows = sum(c["rows"] for per in res.manifest["counts"].values() for c in per.values())
size = sum(p.stat().st_size for p in res.path.rglob("*.parquet"))
print(json.dumps({"rows": rows, "version": res.version, "build_s": t1 - t0, "rebuild_s": t2 - t1, "same": again.version == res.version,
                  "created_again": again.created, "base_kb": base,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "parquet_bytes": size}))
"""


def measure(n: int, workdir: Path) -> dict:
    run_dir, home = workdir / f"run-{n}", workdir / f"home-{n}"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _MAKE, str(run_dir), str(n)], check=True)
    make_s = time.perf_counter() - t0
    out = subprocess.run([sys.executable, "-c", _BUILD, str(run_dir), str(home)], check=True, capture_output=True,
                         text=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(traces=n, make_s=make_s)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000", help="comma-separated trace counts")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lbdata-bench-"))
    load_before = os.getloadavg()
    try:
        results = [measure(int(s), workdir) for s in args.sizes.split(",")]
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"corpus build (python {sys.version.split()[0]}, 128x96 PNG per problem, 2 configs, reflection rate 0.4)")
    print("| traces | rows | build s | rows/s | rebuild s (no-op) | peak RSS MB | RSS after imports MB | parquet MB "
          "| version |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        assert r["same"] and not r["created_again"]
        print(f"| {r['traces']:,} | {r['rows']:,} | {r['build_s']:.1f} | {r['rows'] / r['build_s']:,.0f} | "
              f"{r['rebuild_s']:.1f} | {r['peak_kb'] / 1024:.0f} | {r['base_kb'] / 1024:.0f} | "
              f"{r['parquet_bytes'] / 2**20:.1f} | {r['version']} |")
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min) on {os.cpu_count()} cores: before {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"after {', '.join(f'{x:.2f}' for x in load_after)}")


if __name__ == "__main__":
    main()
