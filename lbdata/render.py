"""Plain-text summaries of what the library's verbs did, as ``lbdata`` prints them on stdout.

One function per result type: ``render_generate(summary, config)``, ``render_build(result)``… Each returns
the whole text (lines joined by newlines), so scripts and notebooks print the same report the command does.
Labels sit in a ten-character column; numbers use thousands separators where they grow large.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lbdata.attention import AttentionTrace
    from lbdata.corpus import BuildResult
    from lbdata.eval import EvalReport
    from lbdata.generate import DryRunEstimate, GenerateConfig, GenerateSummary
    from lbdata.judge import JudgeConfig, JudgeSummary
    from lbdata.validate.runner import ValidationReport
    from lbdata.view.build import ViewSummary


def _counts(counts: dict[str, int]) -> str:
    """``a=1, b=2`` in key order."""
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))


def price_note(est: DryRunEstimate) -> str:
    """The price part of a dry run's model line."""
    if not est.priced:
        return " (not in the price table: counted as $0)"
    return f" (${est.input_per_mtok:.2f} / ${est.output_per_mtok:.2f} per 1M input / output tokens)"


# ---------------------------------------------------------------------------- generate
def render_generate_dry_run(est: DryRunEstimate, config: GenerateConfig) -> str:
    """What ``generate`` would send and spend (``lbdata generate --dry-run``)."""
    lines = ["dry run    nothing sent, nothing written", f"model      {est.model}{price_note(est)}",
             f"problems   {est.problems}" + (f" ({est.bad_rows} bad rows)" if est.bad_rows else "")]
    if est.no_base_trace:
        lines.append(f"no base    {est.no_base_trace} problems without a base trace (skipped)")
    lines.append(f"requests   {est.requests} ({est.skipped} traces already in the ledger)")
    lines.append(f"prompt     {est.prompt_tokens:,} tokens (images {est.image_tokens:,})")
    lines.append(f"completion ~{est.completion_tokens:,} tokens ({est.typical_completion_tokens} per trace; "
                 f"at most {est.max_completion_tokens:,})")
    if est.batch:
        lines.append(f"batches    {est.batches} batch file(s), {est.batch_bytes / 1e6:,.1f} MB with images "
                     f"(at most {config.batch_max_requests:,} requests and {config.batch_max_bytes / 1e6:,.0f} MB "
                     "each)")
    lines.append(f"cost       ~${est.cost_usd:.2f} (at most ${est.max_cost_usd:.2f})"
                 + (" at the batch price" if est.batch and est.priced else "")
                 + (", before prompt-cache discounts" if est.priced else ""))
    if est.usd_per_1k_accepted == float("inf"):
        lines.append("cost/1k    no trace accepted so far: `lbdata show RUN --rejected` shows why")
    elif est.usd_per_1k_accepted is not None:
        lines.append(f"cost/1k    ~${est.usd_per_1k_accepted:.2f} per 1,000 accepted traces (the run accepts "
                     f"{est.acceptance:.0%} so far)")
    elif est.priced and est.requests:
        lines.append("cost/1k    per 1,000 accepted traces: validate a first part of the run (`lbdata validate RUN`) "
                     "and ask again")
    if est.max_attempts > 1:
        lines.append(f"note       --max-attempts {est.max_attempts}: each rejected trace is requested again, up to "
                     f"{est.max_attempts - 1} more times")
    return "\n".join(lines)


def _generate_traffic(s: GenerateSummary) -> list[str]:
    lines = []
    if s.requests or s.cache_hits:
        retried = _counts(s.retries_by_reason)
        lines.append(f"requests   {s.requests} sent, {s.cache_hits} from the cache"
                     + (f"; retried {retried}" if retried else "")
                     + (f"; {s.truncated} truncated, asked again" if s.truncated else ""))
        lines.append(f"tokens     {s.prompt_tokens:,} prompt ({s.cached_tokens:,} from the prompt cache), "
                     f"{s.completion_tokens:,} completion")
    for url, c in s.endpoints.items():
        lines.append(f"server     {url}: {c['ok']} answered, {c['failed']} failed, cooled down {c['cooldowns']}x, "
                     f"{c['state']}")
    if s.batches:
        b = s.batches
        lines.append(f"batches    {b.get('submitted', 0)} submitted, {b.get('resumed', 0)} resumed; "
                     f"{b.get('lines_answered', 0)} lines answered, {b.get('lines_failed', 0)} failed or expired "
                     "(sent again); `lbdata batches RUN` lists them"
                     + (f"; {b['running']} still running with nothing this run needs (the next run reads them)"
                        if b.get("running") else ""))
    if s.cost_usd or s.requests:
        lines.append(f"cost       ${s.cost_usd:.4f}")
    if s.usd_per_1k_accepted is not None:
        per_1k = s.usd_per_1k_accepted
        lines.append("cost/1k    " + (f"${per_1k:.2f} per 1,000 accepted traces" if math.isfinite(per_1k)
                                      else "no trace accepted yet")
                     + f" (run total ${s.run_cost_usd:.4f}, {s.acceptance:.0%} of validated traces accepted)")
    return lines


def render_generate(s: GenerateSummary, config: GenerateConfig) -> str:
    """What ``generate`` did: problems, new traces per variant, failures, traffic, cost, time."""
    lines = [f"run        {s.run_dir}", f"problems   {s.problems} ({s.new_problems} new)"]
    if s.bad_rows:
        lines.append(f"bad rows   {s.bad_rows} ({_counts(s.bad_rows_by_reason)})")
    if s.no_base_trace:
        lines.append(f"no base    {s.no_base_trace} problems without a base trace (skipped)")
    lines += [f"{v:<14} {s.traces_new.get(v, 0)} new traces" for v in config.variants]
    lines.append(f"skipped    {s.traces_skipped} traces already in the ledger")
    lines.append(f"failures   {s.failures}" + (f" ({_counts(s.failures_by_reason)})" if s.failures else ""))
    if config.max_attempts > 1:
        rejected = _counts(s.rejected_by_reason)
        lines.append(f"accepted   {s.accepted}; rejected attempts {s.rejected}" + (f" ({rejected})" if rejected else "")
                     + f"; no accepted trace after {config.max_attempts}: {s.exhausted}")
    lines += _generate_traffic(s)
    lines.append(f"elapsed    {s.elapsed_s:.1f}s")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- judge, validate
def render_judge_dry_run(est: DryRunEstimate, config: JudgeConfig) -> str:
    """What ``judge_run`` would send and spend (``lbdata judge --dry-run``)."""
    return "\n".join([
        "dry run    nothing sent, nothing written",
        f"judge      {config.judge_name()}: {est.model}{price_note(est)}",
        f"requests   {est.requests} back traces ({est.skipped} judged already)",
        f"prompt     {est.prompt_tokens:,} tokens (images {est.image_tokens:,})",
        f"completion ~{est.completion_tokens:,} tokens ({est.typical_completion_tokens} per judgment; "
        f"at most {est.max_completion_tokens:,})",
        f"cost       ~${est.cost_usd:.2f} (at most ${est.max_cost_usd:.2f})",
    ])


def render_judge(s: JudgeSummary, run: str) -> str:
    """What ``judge_run`` did; ``run`` is the run as the user named it (for the suggested next command)."""
    retried = _counts(s.retries_by_reason)
    return "\n".join([
        f"run        {s.run_dir}",
        f"judge      {s.name} ({s.judge_hash})",
        f"traces     {s.back_traces} with <back>; {s.skipped} judged already",
        f"judged     {s.judged}: {s.claims} claims, {s.claims_refuted} refuted, {s.claims_unknown} undecidable; "
        f"{s.refuted_traces} traces with a refuted claim",
        f"unjudged   {s.unjudged}" + (f" ({_counts(s.unjudged_by_reason)}; re-run to ask again)" if s.unjudged else ""),
        f"requests   {s.requests} sent, {s.cache_hits} from the cache" + (f"; retried {retried}" if retried else ""),
        f"tokens     {s.prompt_tokens:,} prompt, {s.completion_tokens:,} completion",
        f"cost       ${s.cost_usd:.4f}",
        f"next       lbdata validate {run} --judge {s.name}",
    ])


def render_validation(r: ValidationReport, run_dir: Path) -> str:
    """What ``validate_run`` found: accepted and rejected per variant, answer matches, reason counts."""
    lines = [f"run        {r.run}", f"config     {r.config_hash}",
             f"traces     {r.traces} (validated now: {r.validated_now}, {r.traces_per_s:,.0f} traces/s)",
             f"accepted   {r.accepted}   rejected {r.rejected}"]
    for variant, c in r.per_variant.items():
        share = c.accepted / c.traces if c.traces else 0.0
        lines.append(f"  {variant:<14} {c.traces:>7} traces  {c.accepted:>7} accepted ({share:.1%})  "
                     f"{c.rejected:>7} rejected")
    lines.append(f"answers    {r.answer_match_rate:.1%} match the gold ({r.answer_timeouts} checks timed out)")
    if r.reasons:
        lines.append("reasons")
        lines += [f"  {code:<26} {n:>7}" for code, n in r.reasons.items()]
    lines.append(f"wrote      {run_dir / 'validation.json'} and validation.md")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- corpus
def render_build(res: BuildResult) -> str:
    """The version ``build_corpus`` made: rows per config and split, back share, rejects and drops."""
    m = res.manifest
    lines = [f"corpus     {res.name}@{res.version}" + ("" if res.created else " (already built; nothing written)"),
             f"path       {res.path}"]
    for cfg in m["configs"]:
        for split in ("train", "test"):
            if split not in m["counts"][cfg]:
                continue
            c = m["counts"][cfg][split]
            rate = c["back"] / c["rows"] if c["rows"] else 0.0
            lines.append(f"{cfg:<14} {split:<5} {c['rows']:>7} rows  {c['back']:>6} back ({rate:.1%})  "
                         f"{c['plain']:>6} plain ({c['derived']} derived)")
    if m["rejects"]:
        lines.append("rejected   " + _counts(m["rejects"]))
    if m["dropped"]:
        lines.append("dropped    " + _counts(m["dropped"]))
    return "\n".join(lines)


def render_versions(items: list[dict[str, Any]]) -> str:
    """The manifests of a corpus's versions, oldest first, the last marked latest."""
    lines = [f"{'version':<13} {'created (UTC)':<20} {'parent':<13} {'rate':<5} rows train/test per config"]
    for i, m in enumerate(items):
        rows = ", ".join(f"{c} " + "/".join(str(m["counts"][c].get(s, {}).get("rows", 0)) for s in ("train", "test"))
                         for c in m["configs"])
        latest = "  (latest)" if i == len(items) - 1 else ""
        lines.append(f"{m['version']:<13} {m['created_at'][:19]:<20} {m['parent'] or '-':<13} "
                     f"{m['build']['reflection_rate']:<5} {rows}{latest}")
    return "\n".join(lines)


def render_diff(d: dict[str, Any]) -> str:
    """``diff_versions``: rows added, removed, changed per config; rows per split before and after."""
    lines = [f"{d['a']['name']}@{d['a']['version']} -> {d['b']['name']}@{d['b']['version']}"]
    for cfg, c in d["configs"].items():
        lines.append(f"{cfg:<14} +{c['added']} added  -{c['removed']} removed  ~{c['changed']} changed  "
                     f"{c['unchanged']} unchanged")
        for split in ("train", "test"):
            ra = d["a"]["counts"].get(cfg, {}).get(split, {}).get("rows", 0)
            rb = d["b"]["counts"].get(cfg, {}).get(split, {}).get("rows", 0)
            lines.append(f"{'':<14} {split:<5} rows {ra} -> {rb}")
    return "\n".join(lines)


def render_view(summary: ViewSummary) -> str:
    """The site ``build_*_view`` wrote: where, how many rows, shards, images and bytes."""
    c = summary.counts
    lines = [f"site       {summary.index_html}"]
    if summary.kind == "diff":
        lines.append(f"rows       {c['rows_a']} -> {c['rows_b']}: +{c['added']} added  -{c['removed']} removed  "
                     f"~{c['changed']} changed  {c['unchanged']} unchanged (by config and problem, as `lbdata diff`)")
        lines += [f"  {cfg}/{split:<8} +{n['added']} -{n['removed']} ~{n['changed']} ={n['unchanged']}"
                  for (cfg, split), n in sorted(c["per_part"].items())]
    elif summary.kind == "run":
        lines.append(f"traces     {summary.rows} ({c['accepted']} accepted, {c['rejected']} rejected, "
                     f"{c['unvalidated']} without a verdict)")
    else:
        lines.append(f"rows       {summary.rows}")
    lines += [f"shards     {summary.shards}",
              f"images     {summary.images} ({summary.thumbnails_made} new thumbnails, {summary.missing_images} "
              "missing)",
              f"size       {summary.bytes / 1e6:.1f} MB", f"elapsed    {summary.elapsed_s:.1f}s"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- train, eval, attention
def render_trained(record: dict[str, Any], out: Path) -> str:
    """A training run's record (``lbdata_train.json``): model, data, losses, last rewards, card."""
    metrics = record.get("metrics", {})
    lines = [f"model      {out}", f"data       {record['data']} ({record['config']}), {record['rows']['train']} rows"]
    if record.get("resumed_at"):
        lines.append(f"resumed    at step {', '.join(map(str, record['resumed_at']))} of {record['global_step']}")
    if "first_logged_loss" in metrics:
        lines.append(f"loss       {metrics['first_logged_loss']:.4f} -> {metrics['last_logged_loss']:.4f}")
    if "eval_loss" in metrics:
        lines.append(f"eval loss  {metrics['eval_loss']:.4f}")
    labels = {"rewards/accuracy_reward/mean": "accuracy", "rewards/look_back_format_reward/mean": "format",
              "look_back/trigger_rate": "trigger rate"}
    shown = [f"{label} {metrics[key]:.3f}" for key, label in labels.items() if key in metrics]
    if shown:
        lines.append("rewards    " + ", ".join(shown) + " (last logged step)")
    lines.append(f"card       {out / 'README.md'}")
    return "\n".join(lines)


def render_eval(report: EvalReport, out_dir: Path) -> str:
    """An evaluation's Markdown table, failed requests, and where its files are."""
    lines = [report.to_markdown()]
    failed = sum(r.finish_reason == "error" for r in report.rows)
    if failed:
        lines.append(f"failed     {failed} requests got no response (the reasons are in results.jsonl); "
                     "re-run the same command to ask them again")
    lines += [f"results    {out_dir / 'results.jsonl'}", f"summary    {out_dir / 'summary.md'}"]
    return "\n".join(lines)


def render_attention(trace: AttentionTrace, paths: dict[str, Path]) -> str:
    """Attention shares through a response, the <back> spans, the look-back lift, and the files written."""
    s = trace.summary()
    spans = ", ".join(f"{a}-{b}" for a, b in trace.back_spans) or "none"
    lift = "n/a" if s["look_back_lift"] is None else f"{s['look_back_lift']:.3f}"
    lines = [f"tokens     {s['response_tokens']} ({'given response' if trace.teacher_forced else 'generated'}, "
             f"{s['layers']} layers)",
             f"mean share image {s['mean_image_share']:.4f}  question {s['mean_question_share']:.4f}  "
             f"generated {s['mean_generated_share']:.4f}",
             f"<back>     tokens {spans}", f"lift       {lift} ({s['look_back_lift_note']})"]
    lines += [f"{kind:<10} {path}" for kind, path in paths.items()]
    return "\n".join(lines)
