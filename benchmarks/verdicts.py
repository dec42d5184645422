"""Verdict snapshot: every verdict ``validate_trace`` gives on a fixed, seeded set of traces.

The set: ``--problems`` synthetic problems, each written by the scene teacher as a plain, a
semantic_back and a solution_back trace; each back trace once with a number or a name of its back
tampered (as in ``benchmarks/grounding.py``) and once corrupted (as in ``benchmarks/validate.py``:
empty, filler, copied or misplaced backs, a wrong answer, …). Every trace is validated with the
problem's scene facts and without them.

``--write FILE`` stores ``{case id: [accepted, reasons]}``; ``--check FILE`` validates again and lists
every case whose verdict differs (exit 1). A change that should not change any verdict (a speed-up)
must pass ``--check`` against a snapshot written before it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/verdicts.py --write /tmp/before.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/verdicts.py --check /tmp/before.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.grounding import tamper_label, tamper_number  # noqa: E402
from benchmarks.validate import _SEG, CORRUPTIONS  # noqa: E402
from lbdata.sources.synthetic import SyntheticSource  # noqa: E402
from lbdata.sources.synthetic.facts import scene_facts  # noqa: E402
from lbdata.teachers.scene import write_trace  # noqa: E402
from lbdata.validate import parse_trace, validate_trace  # noqa: E402


def cases(problems: int, seed: int) -> list[tuple[str, str, str, object, object]]:
    """``(case id, text, variant, problem, facts)`` for the seeded set."""
    rng = random.Random(seed)
    out = []
    for i, row in enumerate(islice(SyntheticSource(seed=seed), problems)):
        p = row.problem
        facts = scene_facts(p.meta)
        for variant in ("plain", "semantic_back", "solution_back"):
            trace = write_trace(p, variant, seed=i)
            base = f"{p.id}/{variant}"
            out.append((f"{base}/clean", trace.text, variant, p, facts))
            if variant == "plain":
                continue
            back = parse_trace(trace.text).backs[0]
            kind = rng.choice(("number", "label"))
            new_back = (tamper_number if kind == "number" else tamper_label)(back.text, facts, rng)
            if new_back is not None:
                text = trace.text[: back.span[0]] + f"<back>{new_back}</back>" + trace.text[back.span[1] :]
                out.append((f"{base}/tampered-{kind}", text, variant, p, facts))
            parts = _SEG.match(trace.text.strip())
            if parts is None:
                continue
            for name in rng.sample(list(CORRUPTIONS), 2):
                text = CORRUPTIONS[name][0](parts.groupdict(), p.answer, variant)
                if text is not None:
                    out.append((f"{base}/{name}", text, variant, p, facts))
    return out


def verdicts(all_cases: list, with_facts: bool) -> tuple[dict[str, list], float]:
    """``{case id: [accepted, reasons]}`` and the CPU seconds ``validate_trace`` took."""
    out: dict[str, list] = {}
    cpu = 0.0
    suffix = "+facts" if with_facts else ""
    for cid, text, variant, p, facts in all_cases:
        t0 = time.process_time()
        v = validate_trace(
            text,
            variant=variant,
            gold=p.answer,
            question=p.question,
            choices=p.choices,
            facts=facts if with_facts else None,
        )
        cpu += time.process_time() - t0
        out[cid + suffix] = [v.accepted, v.reasons]
    return out, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="store the verdicts here")
    group.add_argument("--check", type=Path, help="compare the verdicts with this snapshot")
    args = ap.parse_args()
    all_cases = cases(args.problems, args.seed)
    got: dict[str, list] = {}
    for with_facts in (False, True):
        part, cpu = verdicts(all_cases, with_facts)
        got.update(part)
        print(
            f"{len(part)} traces {'with' if with_facts else 'without'} facts: "
            f"{len(part) / cpu:,.0f} traces per CPU-second",
            file=sys.stderr,
        )
    rejected = sum(not a for a, _ in got.values())
    if args.write:
        args.write.write_text(json.dumps(got, ensure_ascii=False, sort_keys=True))
        print(f"wrote {len(got)} verdicts ({rejected} rejected) to {args.write}")
        return 0
    want = json.loads(args.check.read_text())
    diff = sorted(set(want) ^ set(got)) + sorted(k for k in set(want) & set(got) if want[k] != got[k])
    for k in diff[:20]:
        print(f"{k}: snapshot {want.get(k)}, now {got.get(k)}")
    print(f"{len(got)} verdicts ({rejected} rejected), {len(diff)} differ from {args.check}")
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
