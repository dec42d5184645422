"""Dollars per 1,000 accepted traces: online or Batch API, with or without prefix ordering; and a fleet
that loses a server halfway.

Cost rows. The same N image problems (1008 x 756 PNGs, 765 GPT-4o image tokens each at high detail),
both back variants, ``--max-attempts 2`` (a rejected trace is asked for again), GPT-4o prices from
``lbdata/prices.yaml`` (input $2.50, cached input $1.25, output $10.00 per 1M tokens; batch x 0.5).
The local fake server (tests/fake_openai_server.py, ``--provider-usage``) counts prompt tokens like the
provider (4 characters a token, images in tiles) and reports ``cached_tokens`` from a prefix cache
(prompts of 1,024 tokens or more, the longest earlier-seen prefix in 128-token steps). One problem in
ten always gets a trace the validators reject, so acceptance is about 90 % and the waste is paid for.
Each row runs against a fresh server (an empty prefix cache):

- online: ``--no-prefix-order`` (the variant's task first, then the shared problem text);
- online + prefix: the default order (image, shared rules and question, then the variant's task);
- batch / batch + prefix: the same through ``--batch`` (the fake Batch API; prompt caching applies to
  batch lines as it does online).

Fleet row. 3 fake servers at 100 ms latency, ``--endpoint-concurrency 64`` (``--concurrency 192``),
2 x N requests of small images (112 x 84, so the servers' own CPU stays out of the way); one server
is SIGKILLed when half the requests are answered. Ideal: the first half at 3 x 64 / 0.1 s requests
per second, the second half at 2 x 64 / 0.1 s. The same fleet without the kill is measured too: on
a small shared machine the client's CPU, not the servers, sets the pace, so ``wall / (no-kill wall x
1.25)`` (1.25 = what losing a third of the capacity halfway costs) shows the failover's own cost.

    python benchmarks/cost.py             # 2,000 problems
    python benchmarks/cost.py --n 500     # quicker
    python benchmarks/cost.py --skip-cost --n 300 --latency 1.0 --cap 8   # a fleet whose servers, not the
                                                                          # client's CPU, set the pace
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _server(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_openai_server", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env=ENV)
    return proc, proc.stdout.readline().split()[-1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


def _write_images(folder: Path, n: int, size: tuple[int, int]) -> Path:
    """N problems ``What is i+1?`` with one PNG each; every image differs (a stripe moves)."""
    from PIL import Image, ImageDraw

    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        im = Image.new("RGB", size, (40 + i % 200, 90, 160))
        ImageDraw.Draw(im).rectangle([i % (size[0] - 20), 10, i % (size[0] - 20) + 16, size[1] - 10], fill="white")
        im.save(folder / "img" / f"{i}.png")
        rows.append({"id": f"p{i}", "images": [f"img/{i}.png"], "problem": f"What is {i}+1?", "answer": str(i + 1)})
    path = folder / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cost_row(src: Path, work: Path, name: str, *, batch: bool, prefix: bool) -> dict:
    from lbdata.generate import GenerateConfig, generate
    from lbdata.teachers import batch as batch_module

    batch_module.LINGER_S = 0.5
    faults = json.dumps([{"kind": "bad_trace", "match": "7+1?", "times": -1}])
    proc, url = _server("--provider-usage", "--models", "gpt-4o", "--faults", faults)
    try:
        options = {"base_url": url, "detail": "high"}
        if not prefix:
            options["prefix_order"] = False
        config = GenerateConfig(source=f"jsonl:{src}", teacher="gpt-4o", variants="semantic,solution", limit=None,
                                reveal_answer=True, max_attempts=2, concurrency=64, teacher_options=options,
                                batch=batch, poll_interval=0.2)
        t0 = time.perf_counter()
        summary = generate(config, work / name, api_key="sk-local-fake")
        wall = time.perf_counter() - t0
    finally:
        _stop(proc)
    return {"name": name, "wall_s": wall, "requests": summary.requests, "accepted": summary.accepted,
            "prompt": summary.prompt_tokens, "cached": summary.cached_tokens, "completion": summary.completion_tokens,
            "cost": summary.run_cost_usd, "per_1k": summary.usd_per_1k_accepted, "batches": summary.batches}


def _answered(logs: list[Path]) -> int:
    total = 0
    for log in logs:
        if log.exists():
            with open(log, "rb") as fh:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""))
    return total


def fleet_row(src: Path, work: Path, n_requests: int, *, kill: bool, latency: float, cap: int) -> dict:
    from lbdata.generate import GenerateConfig, generate

    logs = [work / f"server{i}-{kill}.jsonl" for i in range(3)]
    servers = [_server("--latency", str(latency), "--log", str(log)) for log in logs]
    killed_at: list[float] = []
    try:
        config = GenerateConfig(source=f"jsonl:{src}", teacher="openai:fake-teacher", variants="semantic,solution",
                                limit=None, concurrency=3 * cap, reveal_answer=True,
                                teacher_options={"base_url": [u for _, u in servers], "endpoint_concurrency": cap})
        t0 = time.perf_counter()
        done = threading.Event()

        def killer() -> None:
            while not done.is_set():
                if _answered(logs) >= n_requests // 2:
                    servers[1][0].send_signal(signal.SIGKILL)
                    killed_at.append(time.perf_counter() - t0)
                    return
                time.sleep(0.01)

        watcher = threading.Thread(target=killer, daemon=True)
        if kill:
            watcher.start()
        summary = generate(config, work / f"fleet-{kill}")
        wall = time.perf_counter() - t0
        done.set()
    finally:
        for proc, _ in servers:
            _stop(proc)
    assert summary.failures == 0, summary.failures_by_reason
    traces = sum(summary.traces_new.values())
    return {"wall_s": wall, "traces": traces, "endpoints": summary.endpoints,
            "killed_at": killed_at[0] if killed_at else None}


def main() -> None:
    parser = argparse.ArgumentParser(description="dollars per 1,000 accepted traces; a fleet losing a server")
    parser.add_argument("--n", type=int, default=2000, help="problems (each asked for in both back variants)")
    parser.add_argument("--latency", type=float, default=0.1, help="fleet servers' latency, seconds")
    parser.add_argument("--cap", type=int, default=64, help="requests in flight per fleet server")
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lbdata-bench-cost-") as tmp:
        work = Path(tmp)
        if not args.skip_cost:
            src = _write_images(work / "src", args.n, (1008, 756))
            rows = [cost_row(src, work, name, batch=b, prefix=p)
                    for name, b, p in (("online", False, False), ("online + prefix", False, True),
                                       ("batch", True, False), ("batch + prefix", True, True))]
            base = rows[0]["per_1k"]
            print(f"{args.n} image problems x 2 back variants, --max-attempts 2, GPT-4o prices, fake provider usage")
            print()
            print("| row             | requests | accepted | prompt tok | cached tok | completion tok |  cost $ "
                  "| $ / 1k accepted | x online |")
            print("|-----------------|---------:|---------:|-----------:|-----------:|---------------:|--------:"
                  "|----------------:|---------:|")
            for r in rows:
                print(f"| {r['name']:<15} | {r['requests']:8d} | {r['accepted']:8d} | {r['prompt']:10,d} | "
                      f"{r['cached']:10,d} | {r['completion']:14,d} | {r['cost']:7.3f} | {r['per_1k']:15.3f} | "
                      f"{r['per_1k'] / base:8.3f} |")
            print()
            print(f"batch + prefix / online: {rows[3]['per_1k'] / base:.3f}  (target <= 0.45)")
            print()
        if not args.skip_fleet:
            src = _write_images(work / "small", args.n, (112, 84))
            n_requests = 2 * args.n
            whole = fleet_row(src, work, n_requests, kill=False, latency=args.latency, cap=args.cap)
            cut = fleet_row(src, work, n_requests, kill=True, latency=args.latency, cap=args.cap)
            rate = 3 * args.cap / args.latency
            ideal_whole = n_requests / rate
            ideal_cut = (n_requests / 2) / rate + (n_requests / 2) / (rate * 2 / 3)
            print(f"fleet: 3 servers, {args.latency * 1000:.0f} ms, {args.cap} in flight each, {n_requests} requests, "
                  f"{os.cpu_count()} CPU cores shared by servers and client")
            print()
            print("| run                         | traces | wall s | ideal s | x ideal | wall / (no-kill wall x 1.25) |")
            print("|-----------------------------|-------:|-------:|--------:|--------:|-----------------------------:|")
            print(f"| {'no kill':<27} | {whole['traces']:6d} | {whole['wall_s']:6.2f} | {ideal_whole:7.2f} | "
                  f"{whole['wall_s'] / ideal_whole:7.2f} |                              |")
            label = f"one killed at {cut['killed_at']:.2f} s"
            print(f"| {label:<27} | {cut['traces']:6d} | {cut['wall_s']:6.2f} | "
                  f"{ideal_cut:7.2f} | {cut['wall_s'] / ideal_cut:7.2f} | "
                  f"{cut['wall_s'] / (whole['wall_s'] * 1.25):28.2f} |")
            print()
            for url, c in cut["endpoints"].items():
                print(f"  {url}: {c['ok']} answered, {c['failed']} failed, {c['cooldowns']} cooldowns, {c['state']}")


if __name__ == "__main__":
    main()
