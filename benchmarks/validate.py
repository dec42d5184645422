"""Validation speed and answer-checking quality.

1. Generates a synthetic run (synthetic source + scene teacher, semantic and solution back) of
   ``--traces`` traces, corrupts ``--corrupt`` of them (empty, filler, copied or misplaced backs, the
   answer stated before the back, a missing rethink, a boxed answer inside a segment, a wrong answer,
   …), then runs ``lbdata validate`` on fresh copies with one process and with ``--workers 2``, each in
   its own process (nothing memoised in advance), and once more with one process pinned to one CPU
   (the sympy worker it may start shares that CPU). Prints traces/s and how many corrupted traces were
   caught with the code their corruption should cause.
   Also prints CPU seconds (``lbdata validate`` and its workers) and traces per CPU-second, which a
   loaded machine disturbs less than wall time, and the CPU time of ``validate_trace`` alone in this
   process on every trace of the run, without and with the problems' scene facts (the requirement:
   at least 5,000 traces per CPU-second without the judge).
2. Runs ``answers_match`` (memo off) and plain math-verify (``verify(parse(gold), parse(pred))``, a bare
   answer boxed, main thread, its default time limits) over ``tests/data/answer_table.tsv`` and prints
   agreement with the labels, false positives, false negatives and pairs/s. ``benchmarks/answers.py``
   runs the same two checkers over the table's mechanical variants and prints every disagreement.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/validate.py [--traces 20000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "tests" / "data" / "answer_table.tsv"
_SEG = re.compile(r"^<think>(?P<t1>.*)</think>\s*<back>(?P<b>.*)</back>\s*<think>(?P<t2>.*)</think>\s*(?P<tail>.*)$", re.S)


def _join(t1: str, b: str, t2: str, tail: str) -> str:
    return f"<think>{t1}</think>\n<back>{b}</back>\n<think>{t2}</think>\n{tail}"


def _wrong(gold: str) -> str:
    return "B" if gold == "A" else "A" if len(gold) == 1 and gold.isalpha() else "99999"


# name -> (corrupt(parts, gold, variant) -> text or None when it does not apply, expected reason)
CORRUPTIONS = {
    "empty_back": (lambda s, g, v: _join(s["t1"], " ", s["t2"], s["tail"]), "back_empty"),
    "filler_back": (
        lambda s, g, v: _join(s["t1"], " Let me look back at the image once more to make sure everything I wrote "
                              "is consistent. ", s["t2"], s["tail"]),
        "back_filler",
    ),
    "copied_back": (lambda s, g, v: _join(s["t1"], s["t1"], s["t2"], s["tail"]), "back_copy"),
    "back_before_reasoning": (
        lambda s, g, v: _join(" ".join(s["t1"].split()[:6]), s["b"], s["t1"] + " " + s["t2"], s["tail"])
        if v == "semantic_back" else None,
        "back_before_reasoning",
    ),
    "answer_before_back": (
        lambda s, g, v: _join(s["t1"] + f" So the answer is {g}.", s["b"], s["t2"], s["tail"])
        if v == "semantic_back" else None,
        "answer_before_back",
    ),
    "no_candidate": (
        lambda s, g, v: _join(re.split(r"(?<=[.!?])\s+", s["t1"].strip())[0], s["b"], s["t2"], s["tail"])
        if v == "solution_back" else None,
        "no_candidate_before_back",
    ),
    "missing_rethink": (lambda s, g, v: _join(s["t1"], s["b"], " Done. ", s["tail"]), "no_rethink"),
    "boxed_inside_segment": (lambda s, g, v: _join(s["t1"], s["b"], s["t2"] + f" \\boxed{{{g}}} ", ""),
                             "boxed_misplaced"),
    "wrong_answer": (lambda s, g, v: _join(s["t1"], s["b"], s["t2"], f"\\boxed{{{_wrong(g)}}}"), "answer_wrong"),
    "back_removed": (lambda s, g, v: f"<think>{s['t1']} {s['t2']}</think>\n{s['tail']}", "back_missing"),
}


def make_run(run_dir: Path, n_traces: int, corrupt_share: float) -> dict[str, str]:
    """Generate (or resume) the run, corrupt a seeded share of it once; returns {trace_id: expected code}."""
    from lbdata.generate import GenerateConfig, generate
    from lbdata.ledger import Ledger

    marker = run_dir / "corrupted.json"
    if marker.exists():
        return json.loads(marker.read_text())
    t0 = time.perf_counter()
    generate(GenerateConfig(limit=n_traces // 2, seed=7, concurrency=8), run_dir)
    print(f"generated {n_traces} traces in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    rng = random.Random(0)
    expected: dict[str, str] = {}
    names = list(CORRUPTIONS)
    with Ledger.open(run_dir) as ledger:
        traces = list(ledger.iter_traces())
        for trace in rng.sample(traces, round(corrupt_share * len(traces))):
            parts = _SEG.match(trace.text.strip())
            gold = ledger.get_problem(trace.problem_id).answer
            for name in rng.sample(names, len(names)):
                corrupt, code = CORRUPTIONS[name]
                text = corrupt(parts.groupdict(), gold, trace.variant) if parts else None
                if text is not None:  # the ledger never replaces a done trace: the benchmark rewrites it
                    with ledger.transaction() as conn:
                        conn.execute("UPDATE traces SET json=? WHERE id=?",
                                     (trace.model_copy(update={"text": text}).model_dump_json(), trace.id))
                    expected[trace.id] = code
                    break
    marker.write_text(json.dumps(expected))
    return expected


def _one_core() -> None:
    """Pin the child (and the processes it starts) to one CPU: what "on one core" means, measured."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def time_validate(run_dir: Path, workers: int, *, one_core: bool = False) -> dict:
    """``lbdata validate`` in a fresh process on a fresh copy of the run (``one_core``: pinned to one CPU)."""
    copy = run_dir.parent / f"{run_dir.name}-w{workers}{'-1core' if one_core else ''}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run_dir, copy)
    t0 = time.perf_counter()
    cpu0 = _children_cpu()
    subprocess.run([sys.executable, "-m", "lbdata.cli", "validate", str(copy), "--workers", str(workers),
                    "--no-progress"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   preexec_fn=_one_core if one_core else None)
    wall = time.perf_counter() - t0
    report = json.loads((copy / "validation.json").read_text())
    report["wall_s"] = wall
    report["cpu_s"] = _children_cpu() - cpu0  # the command and its workers, start-up and ledger included
    report["copy"] = str(copy)
    return report


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes (and theirs) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_validate_trace(run_dir: Path, rounds: int = 3) -> dict[str, tuple[int, float]]:
    """CPU time of ``validate_trace`` alone, in this process, over every trace of the run: without and with
    the problems' scene facts. Best of ``rounds`` (both kinds in each round, after one untimed pass),
    so the load of a shared machine weighs less; {kind: (traces, CPU seconds)}."""
    from lbdata.ledger import Ledger
    from lbdata.sources.synthetic.facts import scene_facts
    from lbdata.validate import validate_trace

    with Ledger.open(run_dir) as ledger:
        traces = list(ledger.iter_traces())
        problems = {pid: ledger.get_problem(pid) for pid in {t.problem_id for t in traces}}
    facts = {pid: scene_facts(p.meta) for pid, p in problems.items()}
    tasks = [
        (t.text, t.variant, problems[t.problem_id], facts[t.problem_id], t.id) for t in traces
    ]

    def once(with_facts: bool) -> float:
        t0 = time.process_time()
        for text, variant, p, f, tid in tasks:
            validate_trace(text, variant=variant, gold=p.answer, question=p.question, choices=p.choices,
                           trace_id=tid, facts=f if with_facts else None)
        return time.process_time() - t0

    once(True)
    best = {"without facts": float("inf"), "with scene facts": float("inf")}
    for _ in range(rounds):
        best["without facts"] = min(best["without facts"], once(False))
        best["with scene facts"] = min(best["with scene facts"], once(True))
    return {kind: (len(tasks), cpu) for kind, cpu in best.items()}


def detection(copy: Path, expected: dict[str, str]) -> tuple[int, int, int, int, int]:
    from lbdata.ledger import Ledger
    from lbdata.validate import ValidationConfig

    clean = clean_ok = bad_caught = bad_code = 0
    with Ledger.open(copy) as ledger:
        for v in ledger.iter_verdicts(ValidationConfig().config_hash):
            if v.trace_id in expected:
                bad_caught += not v.accepted
                bad_code += expected[v.trace_id] in v.reasons
            else:
                clean += 1
                clean_ok += v.accepted
    return clean, clean_ok, len(expected), bad_caught, bad_code


def compare_checkers() -> list[tuple[str, int, int, int, int, float]]:
    """``answers_match`` (memo off) and plain math-verify over the labelled table, as ``benchmarks/answers.py``
    calls them."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from answers import load_answer_table, math_verify_plain

    from lbdata.validate.answers import answers_match, reset_answer_stats

    logging.disable(logging.WARNING)
    rows = load_answer_table(TABLE)
    answers_match("1", "x+1")  # start the sympy worker before timing

    def ours(g: str, p: str, c: tuple[str, ...] | None) -> bool:
        reset_answer_stats(clear_memo=True)  # memo off: every pair is checked from scratch
        return answers_match(g, p, choices=c)

    out = []
    for name, check in [("answers_match", ours), ("math-verify (plain)", lambda g, p, c: math_verify_plain(g, p))]:
        t0 = time.perf_counter()
        got = [check(r.gold, r.pred, r.choices) for r in rows]
        dt = time.perf_counter() - t0
        agree = sum(x == r.expected for x, r in zip(got, rows, strict=True))
        fp = sum(x and not r.expected for x, r in zip(got, rows, strict=True))
        fn = sum(r.expected and not x for x, r in zip(got, rows, strict=True))
        out.append((name, agree, len(rows), fp, fn, len(rows) / dt))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", type=int, default=20000)
    ap.add_argument("--corrupt", type=float, default=0.3)
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    tmp = None
    if args.out is None:
        tmp = tempfile.mkdtemp(prefix="lbdata-bench-validate-")
        args.out = Path(tmp)
    run_dir = args.out / "bench"
    try:
        expected = make_run(run_dir, args.traces, args.corrupt)
        results = {w: time_validate(run_dir, w) for w in (1, 2)}
        if hasattr(os, "sched_setaffinity"):
            results["1, pinned to one core"] = time_validate(run_dir, 1, one_core=True)
        print(f"## Validation speed ({args.traces} traces, {len(expected)} corrupted, {os.cpu_count()} CPUs)\n")
        print("| workers | traces | validate s | traces/s | traces/s per worker | accepted | rejected | CPU s "
              "| traces per CPU-s |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for w, r in results.items():
            n_workers = w if isinstance(w, int) else 1
            print(f"| {w} | {r['validated_now']} | {r['elapsed_s']:.2f} | {r['traces_per_s']:,.0f} | "
                  f"{r['traces_per_s'] / n_workers:,.0f} | {r['accepted']} | {r['rejected']} | {r['cpu_s']:.2f} | "
                  f"{r['validated_now'] / r['cpu_s']:,.0f} |")
        print("\nCPU s: the `lbdata validate` command and its workers, start-up and ledger included.\n")
        print("| validate_trace alone, one process | traces | CPU s (best of 3) | traces per CPU-s |")
        print("|---|---:|---:|---:|")
        for kind, (n, cpu) in time_validate_trace(run_dir).items():
            print(f"| {kind} | {n} | {cpu:.2f} | {n / cpu:,.0f} |")
        clean, clean_ok, bad, bad_caught, bad_code = detection(Path(results[1]["copy"]), expected)
        print(f"\nclean traces accepted: {clean_ok}/{clean}; corrupted traces rejected: {bad_caught}/{bad}, "
              f"with the expected code: {bad_code}/{bad}")
        print(f"reasons: {json.dumps(results[1]['reasons'])}\n")
        print("## Answer checking on tests/data/answer_table.tsv\n")
        print("| checker | agreement with labels | false positives | false negatives | pairs/s |")
        print("|---|---:|---:|---:|---:|")
        for name, agree, n, fp, fn, rate in compare_checkers():
            print(f"| {name} | {agree}/{n} ({agree / n:.1%}) | {fp} | {fn} | {rate:,.0f} |")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
