"""What a person sees while a model trains, and what stays in the model folder afterwards.

- ``TrainMonitor``, a ``transformers.TrainerCallback`` that replaces the trainer's printer: a progress
  bar on stderr with the step count, ETA and the last loss or rewards (a plain line at every tenth of
  the run when stderr is not a terminal, so a log file gets no redraws); every logged step appended to
  ``train_log.csv`` in the model folder; at the end, ``train_curve.png`` (loss, and for GRPO the reward
  means and the trigger rate per step), which the model card links.
- ``quiet_libraries()``: hides library output that asks nothing of the user (transformers' and
  TRL's FutureWarnings, DeepSpeed's "no GPU" notices, the weight-loading and ``Generating train split``
  bars). ``lbdata train … -v`` keeps them.
"""

from __future__ import annotations

import csv
import logging
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from lbdata.progress import ProgressBar
from lbdata.train.common import CURVE_FILE, LOG_FILE

log = logging.getLogger(__name__)

ACCURACY = "rewards/accuracy_reward/mean"
FORMAT = "rewards/look_back_format_reward/mean"
TRIGGER = "look_back/trigger_rate"
SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss")
"""Keys of the trainer's one end-of-run log entry (not a step)."""
STATS = (("loss", "loss"), (ACCURACY, "acc"), (FORMAT, "fmt"), (TRIGGER, "back"))
"""Logged values shown on the progress line, with their short labels."""
QUIET_MODULES = ("transformers", "trl", "accelerate", "peft", "deepspeed", "datasets", "torch")


def quiet_libraries(verbose: bool = False) -> None:
    """Filter the training libraries' non-actionable warnings and bars (nothing when ``verbose``)."""
    if verbose:
        return
    import datasets
    import transformers

    for module in QUIET_MODULES:
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=module)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    # DeepSpeed sets its own logger's level on import; a filter survives that.
    logging.getLogger("DeepSpeed").addFilter(_errors_only)


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class TrainMonitor(TrainerCallback):
    """Progress bar, ``train_log.csv`` and ``train_curve.png`` for one run (main process only)."""

    def __init__(self, out: Path, kind: str, *, progress: bool = True) -> None:
        self.out = Path(out)
        self.kind = kind
        self.progress = progress
        self.rows: list[dict[str, float]] = []
        self.columns: list[str] = ["step", "epoch"]
        self._bar: ProgressBar | None = None
        self._tty = sys.stderr.isatty()
        self._last: dict[str, float] = {}
        self._next_line = 0
        self._printed = 0
        self.resumed_at: list[int] = []
        """Steps the run resumed at from a checkpoint (``lbdata.train.model.start_run`` sets them)."""

    # ------------------------------------------------------------------ callback hooks

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.out.mkdir(parents=True, exist_ok=True)
            if state.global_step > 0:  # resumed: the checkpoint's log holds the steps before it
                self._resume(state)
            self._bar = ProgressBar(self.kind, state.max_steps, enabled=self.progress and self._tty, unit="steps")

    def _resume(self, state) -> None:
        for entry in state.log_history:
            if "step" in entry and not any(k in entry for k in SUMMARY_KEYS):
                self._add_row(int(entry["step"]), entry.get("epoch"), entry)
        self.write_csv()
        self._next_line = self._printed = state.global_step
        message = f"{self.kind} resumed at step {state.global_step}/{state.max_steps} from its checkpoint"
        log.info(message)
        if self.progress:
            print(message, file=sys.stderr, flush=True)

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self._bar is not None:
            self._bar.update(completed=state.global_step, stats=self.stats_text)

    def _line(self, state, *, final: bool = False) -> None:
        """Without a terminal: one plain line at every tenth of the run (and at its end) instead of redraws."""
        if not self.progress or self._tty or not state.max_steps:
            return
        if state.global_step >= self._next_line or (final and state.global_step != self._printed):
            print(f"{self.kind} step {state.global_step}/{state.max_steps}  {self.stats_text()}", file=sys.stderr,
                  flush=True)
            self._printed = state.global_step
            self._next_line = state.global_step + max(1, state.max_steps // 10)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or any(k in logs for k in SUMMARY_KEYS):
            return
        self._add_row(state.global_step, state.epoch, logs)
        self.write_csv()
        if self._bar is not None:
            self._bar.update(completed=state.global_step, stats=self.stats_text, force=True)
        self._line(state)

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if self._bar is not None:
            self._bar.update(completed=state.global_step, stats=self.stats_text, force=True)
            self._bar.close()
        self._line(state, final=True)
        self.write_csv()
        if self.rows:
            try:
                plot_curve(self.rows, self.out / CURVE_FILE, self.kind, resumed_at=self.resumed_at)
            except (OSError, ValueError) as exc:  # a curve is a convenience; the CSV holds the numbers
                log.warning("could not draw %s (%s); the numbers are in %s", CURVE_FILE, exc, LOG_FILE)

    def _add_row(self, step: int, epoch: float | None, logs: dict[str, Any]) -> None:
        row: dict[str, float] = {"step": float(step)}
        if epoch is not None:
            row["epoch"] = round(float(epoch), 4)
        for key, value in logs.items():
            number = _number(value)
            if number is None or key in ("epoch", "step"):
                continue
            row[key] = number
            if key not in self.columns:
                self.columns.append(key)
        self.rows.append(row)
        self._last.update({k: v for k, v in row.items() if k not in ("step", "epoch")})

    # ------------------------------------------------------------------ outputs

    def stats_text(self) -> str:
        return "  ".join(f"{label} {self._last[key]:.3f}" for key, label in STATS if key in self._last)

    def write_csv(self) -> None:
        """Rewrite ``train_log.csv`` whole (a step's row may add a column), atomically."""
        if not self.rows:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / (LOG_FILE + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, restval="")
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: (int(v) if k == "step" else v) for k, v in row.items()})
        tmp.replace(self.out / LOG_FILE)


def read_log(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``train_log.csv`` (or of the one in a model folder); empty cells are left out."""
    p = Path(path)
    if p.is_dir():
        p = p / LOG_FILE
    with p.open(encoding="utf-8", newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(fh)]


def plot_curve(rows: list[dict[str, float]], path: Path, kind: str, *, resumed_at: Sequence[int] = ()) -> Path:
    """Loss (and, when logged, reward means and trigger rate) against the step, as a PNG; a dashed line marks
    each step the run resumed at from a checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key: str) -> tuple[list[float], list[float]]:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    panels: list[tuple[str, list[tuple[str, str]]]] = [("loss", [("loss", "train loss"), ("eval_loss", "eval loss")])]
    rewards = [(ACCURACY, "accuracy reward"), (FORMAT, "format reward"), (TRIGGER, "trigger rate")]
    if any(key in r for r in rows for key, _ in rewards):
        panels.append(("share of completions", rewards))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    for ax, (ylabel, keys) in zip(axes[0], panels, strict=True):
        for key, label in keys:
            xs, ys = series(key)
            if xs:
                ax.plot(xs, ys, label=label, marker="." if len(xs) < 60 else None, linewidth=1.2)
        for i, step in enumerate(resumed_at):
            ax.axvline(step, color="grey", linestyle="--", linewidth=0.8, label="resumed" if i == 0 else None)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"lbdata train {kind}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
