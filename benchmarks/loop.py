"""Close the loop on this CPU: base → SFT → GRPO → eval, with the tiny offline Qwen2.5-VL.

Steps (all offline, library calls of the CLI commands): generate a synthetic run with the scene teacher,
build a corpus version (every row with a ``<back>``), build the tiny model, SFT it (``tiny-sft``) for
a number of steps chosen so that it has *not* yet mastered the format, then GRPO from that checkpoint
(``tiny-grpo``) three times:

- ``GRPO``: the paper's reward, accuracy + 0.1 × lbdata's ``look_back_format_reward``;
- ``GRPO, format off``: accuracy alone (``reward_weights: [1.0, 0.0]``), the control: whatever moves
  the format in the row above and not here is the format reward's doing;
- ``GRPO, regex format``: accuracy + 0.1 × the paper-style regex (``<think>.*</think>.*<back>.*</back>
  .*<think>.*</think>.*\\boxed{}``), which also pays for empty and filler backs.

Every model is evaluated greedily (``lbdata.eval``, the paper's prompt) on held-out synthetic
problems drawn with another seed. One row per stage: accuracy, trigger rate, well-formed rate, mean
``<back>`` length in words, the share of responses with a ``<back>`` whose backs ``validate`` rejects
(``back_empty``, ``back_filler``, ``back_copy`` …), and for GRPO the reward means over the first and the
last steps of the run (from the run's ``train_log.csv``).

Targets: well-formed after GRPO >= after SFT + 15 points (or >= 95 %), trigger >= 90 %, the whole
benchmark <= 12 CPU minutes on one core (OMP_NUM_THREADS=1; CPU seconds are printed with wall seconds,
as wall time depends on the machine's load). The tiny model learns the Look-Back *format*, not the
mathematics: its accuracy stays near chance.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/loop.py [--sft-steps 800] [--grpo-steps 60] [--heldout 64]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ACC = "rewards/accuracy_reward/mean"
TRIGGER = "look_back/trigger_rate"
FORMATS = ("rewards/look_back_format_reward/mean", "rewards/regex_format_reward/mean")


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the answer checker's sympy workers)."""
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF,
                                                                          resource.RUSAGE_CHILDREN)))


class Clock:
    """Wall and CPU seconds per stage."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, float, float]] = []
        self.wall0, self.cpu0 = time.perf_counter(), _cpu()

    @contextlib.contextmanager
    def stage(self, name: str):
        wall, cpu = time.perf_counter(), _cpu()
        yield
        self.stages.append((name, time.perf_counter() - wall, _cpu() - cpu))

    def total(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, _cpu() - self.cpu0


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def back_stats(rows) -> tuple[float | None, float | None]:
    """Mean ``<back>`` length in words, and the share of responses with a back that ``validate`` rejects for it."""
    from lbdata.validate import ValidationConfig, parse_trace
    from lbdata.validate.backs import back_reasons

    config = ValidationConfig()
    lengths: list[int] = []
    with_back = rejected = 0
    for row in rows:
        parsed = parse_trace(row.response)
        backs = [s for s in parsed.segments if s.kind == "back"]
        if not backs:
            continue
        with_back += 1
        lengths += [len(s.words) for s in backs]
        reasons, _ = back_reasons(parsed, config, question=row.question, choices=row.choices)
        rejected += bool(reasons)
    mean_len = sum(lengths) / len(lengths) if lengths else None
    return mean_len, (rejected / with_back if with_back else None)


def reward_ends(log_rows: list[dict[str, float]], k: int) -> str:
    """``acc a→b, fmt c→d, back e→f``: means over the first and the last ``k`` logged steps."""

    def mean(rows, key):
        values = [r[key] for r in rows if key in r]
        return sum(values) / len(values) if values else None

    first, last = log_rows[:k], log_rows[-k:]
    parts = []
    fmt = next((key for key in FORMATS if any(key in r for r in log_rows)), None)
    for key, label in ((ACC, "acc"), (fmt, "fmt"), (TRIGGER, "back")):
        if key is None:
            continue
        a, b = mean(first, key), mean(last, key)
        if a is not None and b is not None:
            parts.append(f"{label} {a:.2f}→{b:.2f}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=300, help="synthetic problems in the training corpus")
    parser.add_argument("--heldout", type=int, default=64, help="held-out synthetic problems to evaluate on")
    parser.add_argument("--sft-steps", type=int, default=800,
                        help="SFT optimizer steps (batch 2); few enough that the format is not yet mastered")
    parser.add_argument("--grpo-steps", type=int, default=60, help="GRPO optimizer steps of each GRPO run")
    parser.add_argument("--max-pixels", type=int, default=112 * 112,
                        help="image pixel band (112x112: 16 image tokens), saved with the SFT processor")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training problems")
    parser.add_argument("--heldout-seed", type=int, default=1, help="seed of the held-out problems (must differ)")
    parser.add_argument("--max-new-tokens", type=int, default=320,
                        help="longest evaluated response (the tiny-grpo completion length)")
    parser.add_argument("--no-control", action="store_true", help="skip the format-off control run")
    parser.add_argument("--no-regex", action="store_true", help="skip the regex-format run")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    if args.heldout_seed == args.seed:
        sys.exit("--heldout-seed must differ from --seed, or the held-out problems are the training problems")

    import logging

    logging.disable(logging.WARNING)
    from lbdata.corpus import BuildConfig, build_corpus
    from lbdata.eval import LocalModel, evaluate, summarize_rows
    from lbdata.generate import GenerateConfig, generate
    from lbdata.sources import load_source
    from lbdata.train.grpo import GRPOJob, train_grpo
    from lbdata.train.monitor import read_log
    from lbdata.train.sft import SFTJob, train_sft
    from lbdata.train.tiny import build_tiny_model

    work = args.out or Path(tempfile.mkdtemp(prefix="lbdata-loop-"))
    home = work / "home"
    clock = Clock()

    with clock.stage("generate + build corpus + tiny model"):
        generate(GenerateConfig(limit=args.problems, seed=args.seed, variants=("semantic_back",)),
                 home / "runs" / "loop")
        built = build_corpus([home / "runs" / "loop"], "loop",
                             BuildConfig(variants=("semantic_back",), reflection_rate=1.0, test_size=0.05), home=home)
        base = build_tiny_model(work / "tiny", seed=0)
    rows = built.manifest["counts"]["semantic_back"]["train"]["rows"]
    corpus = f"loop@{built.version}"
    heldout = list(itertools.islice(load_source("synthetic", seed=args.heldout_seed), args.heldout))
    train_questions = {r.problem.question for r in itertools.islice(load_source("synthetic", seed=args.seed),
                                                                     args.problems)}
    same_question = sum(r.problem.question in train_questions for r in heldout)

    def run_eval(label: str, model: Path):
        with clock.stage(f"eval {label}"):
            return evaluate(LocalModel(model), heldout, "semantic", max_new_tokens=args.max_new_tokens, batch_size=16)

    results: list[tuple[str, object, str]] = [("base (untrained)", run_eval("base", base), "")]
    quiet = contextlib.redirect_stdout(sys.stderr)  # keep stdout for the tables

    with clock.stage(f"SFT {args.sft_steps} steps"), quiet:
        sft = train_sft(SFTJob(corpus=corpus, home=str(home), model=str(base), recipe="tiny-sft", out=str(work / "sft"),
                               overwrite=True, overrides={"max_steps": args.sft_steps, "logging_steps": 50, "disable_tqdm": True,
                                          "max_pixels": args.max_pixels, "lr_scheduler_type": "cosine"}))
    results.append((f"SFT ({args.sft_steps} steps)", run_eval("SFT", sft.out), ""))

    runs = [("GRPO", "grpo", {})]
    if not args.no_control:
        runs.append(("GRPO, format off (control)", "grpo-control", {"reward_weights": [1.0, 0.0]}))
    if not args.no_regex:
        runs.append(("GRPO, regex format", "grpo-regex", {"format_reward": "regex"}))
    k = max(1, args.grpo_steps // 8)
    for label, name, extra in runs:
        with clock.stage(f"{label} {args.grpo_steps} steps"), quiet:
            out = train_grpo(GRPOJob(data=corpus, home=str(home), model=str(sft.out), recipe="tiny-grpo",
                                     out=str(work / name), overwrite=True,
                                     overrides={"max_steps": args.grpo_steps, "disable_tqdm": True, **extra})).out
        results.append((label, run_eval(label, out), reward_ends(read_log(out), k)))
    wall, cpu = clock.total()

    print(f"# Look-Back loop on CPU (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")
    print()
    print(f"corpus {corpus}: {rows} semantic_back training rows from {args.problems} synthetic problems "
          f"(seed {args.seed}), every row with a <back>; images at most {args.max_pixels} pixels")
    print(f"SFT: recipe tiny-sft, {args.sft_steps} steps of batch 2, loss {sft.metrics['first_logged_loss']:.3f} -> "
          f"{sft.metrics['last_logged_loss']:.3f}")
    print(f"GRPO: recipe tiny-grpo from the SFT checkpoint, {args.grpo_steps} steps each (rewards: means over the "
          f"first and the last {k} steps)")
    print(f"held out: {len(heldout)} synthetic problems (seed {args.heldout_seed}; {same_question} share a question "
          f"text with a training problem), greedy, at most {args.max_new_tokens} new tokens, semantic-back prompt")
    print()
    print("| stage | accuracy | trigger | well-formed | back words | backs rejected | truncated "
          "| GRPO rewards, first → last steps |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    summaries = {}
    for label, report, rewards in results:
        s = summarize_rows(report.rows)
        summaries[label] = s
        length, rejected = back_stats(report.rows)
        print(f"| {label} | {_pct(s['accuracy'])} | {_pct(s['trigger_rate'])} | {_pct(s['well_formed_rate'])} "
              f"| {'-' if length is None else f'{length:.1f}'} | {_pct(rejected)} | {_pct(s['truncated_rate'])} "
              f"| {rewards or '-'} |")
    print()
    print("| stage | wall s | CPU s |")
    print("|---|---:|---:|")
    for name, w, c in clock.stages:
        print(f"| {name} | {w:.1f} | {c:.1f} |")
    print(f"| total | {wall:.1f} | {cpu:.1f} |")
    print()
    after_sft, after_grpo = summaries[results[1][0]], summaries["GRPO"]
    wf_sft, wf = after_sft["well_formed_rate"] or 0.0, after_grpo["well_formed_rate"] or 0.0
    checks = [
        (f"well-formed after GRPO >= after SFT + 15 points or >= 95 % ({100 * wf:.1f} vs {100 * wf_sft:.1f})",
         wf >= wf_sft + 0.15 or wf >= 0.95),
        (f"trigger after GRPO >= 90 % ({100 * (after_grpo['trigger_rate'] or 0):.1f})",
         (after_grpo["trigger_rate"] or 0) >= 0.9),
        (f"whole benchmark <= 12 CPU minutes ({cpu / 60:.1f})", cpu <= 720),
    ]
    if not args.no_control:
        control = summaries["GRPO, format off (control)"]["well_formed_rate"] or 0.0
        checks.append((f"the format reward moves the format: GRPO well-formed above the control's "
                       f"({100 * wf:.1f} vs {100 * control:.1f})", wf > control))
    for text, ok in checks:
        print(f"- [{'x' if ok else ' '}] {text}")
    print()
    print("The tiny model learns the Look-Back format, not the mathematics: accuracy stays near chance.")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
