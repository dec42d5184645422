"""How much the generation engine costs over the thinnest possible HTTP client.

Starts the local fake OpenAI-compatible server (tests/fake_openai_server.py) in its own process with a
fixed latency, writes a jsonl source of N one-image problems, then, each in a fresh process:

- lbdata: ``generate(--teacher openai:fake-teacher --base-url … --concurrency C)`` into a new run —
  source reading, image storage, rendering, cache, rate limiter, retries, pricing and ledger writes
  included;
- bare: the same N requests (messages rendered beforehand, outside the clock) sent by ``AsyncOpenAI``
  under an ``asyncio.Semaphore(C)`` with ``chat.completions.create`` — the issue's reference;
- bare-post: the same, sent with the same client's ``client.post("/chat/completions", cast_to=Response)``
  and the JSON read by hand — the call lbdata itself makes, so this row isolates the engine's own cost.

The images are 112 x 84 PNGs, already inside the shared pixel band, so every client sends them as they
are (a resize would cost every client the same). Imports happen before the clock in every client.

Prints wall times, the ideal N / C × latency, the ratio lbdata / bare (target ≤ 1.10), client CPU per
request and peak RSS. The server and the clients share the machine's cores, so the bare client lands
above the ideal; the ratio is what counts.

    python benchmarks/generate_http.py                 # 2000 requests, 100 ms, concurrency 64
    python benchmarks/generate_http.py --repeat 3      # best of three per client
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "fake-teacher"


def _usage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "rss_mib": ru.ru_maxrss / 1024}


def run_lbdata(url: str, src: str, n: int, concurrency: int, workdir: str) -> dict[str, float]:
    # Imports happen before the clock, as in the bare client (they cost about 0.5 s once, not per request).
    import httpx2  # noqa: F401
    import openai  # noqa: F401
    import tenacity  # noqa: F401

    import lbdata.pricing  # noqa: F401
    import lbdata.ratelimit  # noqa: F401
    import lbdata.sources.files  # noqa: F401
    import lbdata.teachers.openai  # noqa: F401
    from lbdata.generate import GenerateConfig, generate

    config = GenerateConfig(source=f"jsonl:{src}", teacher=f"openai:{MODEL}", variants="semantic", limit=n,
                            concurrency=concurrency, teacher_options={"base_url": url})
    before = _usage()
    t0 = time.perf_counter()
    summary = generate(config, Path(workdir) / "run")
    wall = time.perf_counter() - t0
    after = _usage()
    assert summary.traces_new == {"semantic_back": n} and summary.failures == 0, summary
    return {"wall_s": wall, "cpu_s": after["cpu_s"] - before["cpu_s"], "rss_mib": after["rss_mib"]}


def run_bare(url: str, src: str, n: int, concurrency: int, post: bool = False) -> dict[str, float]:
    import httpx2
    import openai

    from lbdata.generate import GenerateConfig
    from lbdata.records import Trace
    from lbdata.sources import load_source
    from lbdata.teachers.base import TraceRequest
    from lbdata.teachers.openai import OpenAITeacher

    # The same requests lbdata sends (same messages, seeds and parameters), rendered before the clock starts.
    teacher = OpenAITeacher(MODEL, base_url=url)
    config = GenerateConfig(source=f"jsonl:{src}", teacher=f"openai:{MODEL}", variants="semantic", limit=n)
    bodies = []
    for row in load_source(config.source, columns=None):
        tid = Trace.make_id(problem_id=row.problem.id, variant="semantic_back", mode="write", teacher=teacher.info,
                            prompt_hash=teacher.prompt_hash("semantic_back", "write"))
        request = TraceRequest(problem=row.problem, images=row.images, variant="semantic_back", seed=int(tid[:8], 16))
        bodies.append({"model": MODEL, "messages": teacher.messages(request), **teacher._params(request)})
    bodies = bodies[:n]

    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0)
        slots = asyncio.Semaphore(concurrency)

        async def one(body: dict) -> None:
            async with slots:
                if post:  # the same client's raw POST, as lbdata sends: no typed-params transform, raw JSON back
                    raw = await client.post("/chat/completions", body=body, cast_to=httpx2.Response)
                    assert json.loads(raw.content)["choices"][0]["message"]["content"]
                else:
                    response = await client.chat.completions.create(**body)
                    assert response.choices[0].message.content

        await asyncio.gather(*(one(b) for b in bodies))
        await client.close()

    before = _usage()
    t0 = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - t0
    after = _usage()
    return {"wall_s": wall, "cpu_s": after["cpu_s"] - before["cpu_s"], "rss_mib": after["rss_mib"]}


def _child(kind: str, url: str, src: str, n: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lbdata-bench-") as work:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--url", url, "--src", src, "--n", str(n),
             "--concurrency", str(concurrency), "--workdir", work],
            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False,
        )
    if out.returncode != 0:
        raise SystemExit(f"{kind} client failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description="lbdata's HTTP engine against a bare AsyncOpenAI loop")
    parser.add_argument("--n", type=int, default=2000, help="requests per client")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1, help="server latency per request, seconds")
    parser.add_argument("--repeat", type=int, default=1, help="runs per client (alternating); the best is shown")
    parser.add_argument("--child", choices=["lbdata", "bare", "bare-post"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if args.child == "lbdata":
            result = run_lbdata(args.url, args.src, args.n, args.concurrency, args.workdir)
        else:
            result = run_bare(args.url, args.src, args.n, args.concurrency, post=args.child == "bare-post")
        print(json.dumps(result))
        return

    from tests.fake_openai_server import write_problems

    with tempfile.TemporaryDirectory(prefix="lbdata-bench-src-") as tmp:
        # 112 x 84 is inside the shared pixel band (multiples of 28), so both clients send the PNG as is.
        src = str(write_problems(tmp, args.n, size=(112, 84), vary=False))
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_openai_server", "--latency", str(args.latency), "--rate-limit-headers"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        try:
            url = server.stdout.readline().split()[-1]
            runs: dict[str, list[dict[str, float]]] = {"bare": [], "bare-post": [], "lbdata": []}
            for _ in range(args.repeat):
                for kind in runs:
                    runs[kind].append(_child(kind, url, src, args.n, args.concurrency))
        finally:
            server.terminate()
            server.wait(10)

    best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in runs.items()}
    ideal = args.n / args.concurrency * args.latency
    ratio = best["lbdata"]["wall_s"] / best["bare"]["wall_s"]
    ratio_post = best["lbdata"]["wall_s"] / best["bare-post"]["wall_s"]
    print(f"{args.n} requests, concurrency {args.concurrency}, server latency {args.latency * 1000:.0f} ms, "
          f"{os.cpu_count()} CPU cores shared by server and client, best of {args.repeat}")
    print()
    print(f"| {'client':<50} | wall s | ideal s | x ideal | CPU ms/request | peak RSS MiB |")
    print(f"|{'-' * 52}|-------:|--------:|--------:|---------------:|-------------:|")
    labels = {"bare": f"bare: chat.completions.create, Semaphore({args.concurrency})",
              "bare-post": f"bare: client.post (raw JSON), Semaphore({args.concurrency})",
              "lbdata": f"lbdata generate --concurrency {args.concurrency}"}
    for kind, label in labels.items():
        r = best[kind]
        print(f"| {label:<50} | {r['wall_s']:6.2f} | {ideal:7.3f} | {r['wall_s'] / ideal:7.2f} | "
              f"{r['cpu_s'] / args.n * 1000:14.2f} | {r['rss_mib']:12.0f} |")
    print()
    print(f"ratio lbdata / bare (chat.completions.create): {ratio:.3f}  (target <= 1.10)")
    print(f"ratio lbdata / bare (client.post, what lbdata itself sends with): {ratio_post:.3f}")
    if args.repeat > 1:
        for kind in runs:
            walls = ", ".join(f"{r['wall_s']:.2f}" for r in runs[kind])
            print(f"{kind} wall times: {walls} (median {statistics.median(r['wall_s'] for r in runs[kind]):.2f})")


if __name__ == "__main__":
    main()
