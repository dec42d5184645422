"""Every `lbdata …` command in README.md's shell blocks runs as printed, so the README cannot drift.

The commands run in README order in one working folder (``./lbdata-work`` is the default home, as the
README assumes), against local files and a local OpenAI-compatible server (``OPENAI_BASE_URL``; what
the README sends to GPT-4o goes there). A command is run unless it is in ``SKIPPED`` with its reason,
so a new README command is tested by default. Each goes through the console script's entry point
(``lbdata.cli.main``) in the test process, with the README's folder as the working folder. Placeholders the README cannot spell (a version hash, a
folder name made at run time) are filled in from ``placeholders`` — nothing else is changed.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from tests.conftest import png_bytes
from tests.fake_openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SERVED = ("gpt-4o",)

HUB = "needs the Hugging Face Hub (no network here); hf: sources are tested against local folders"
SKIPPED: dict[str, str] = {
    "lbdata generate --source hf:hiyouga/geometry3k@train --teacher openai:Qwen/Qwen2.5-VL-72B-Instruct "
    "--base-url http://127.0.0.1:8000/v1": HUB + " and a vLLM server",
    "lbdata generate --source hf:hiyouga/geometry3k@train --teacher openai:Qwen/Qwen2.5-VL-72B-Instruct "
    "--base-url http://127.0.0.1:8000/v1 --concurrency 64 --reveal-answer --max-attempts 3": HUB + " and a vLLM server",
    "lbdata generate --source hf:hiyouga/geometry3k@train --teacher openai:Qwen/Qwen2.5-VL-72B-Instruct "
    "--base-url fleet.txt --concurrency 192 --endpoint-concurrency 64 --reveal-answer --max-attempts 3":
        HUB + " and a fleet of vLLM servers (fleet.txt)",
    "lbdata judge RUN --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-VL-7B-Instruct --name qwen7b "
    "--concurrency 32": "needs a vLLM server with Qwen2.5-VL-7B; test_judge.py judges through a local server and "
    "through `lbdata serve` on the tiny model",
    "lbdata push demo@latest --repo ORG/demo [--private]": "uploads to the Hub with a token; the --dry-run above runs",
    "lbdata schemas": "rewrites the project's schemas/ folder; `lbdata schemas --check` runs, test_schemas.py covers it",
    "lbdata serve tiny-qwen --port 8000": "serves until Ctrl-C; the tiny_server fixture runs it (test_evaluate.py)",
    "lbdata train sft --corpus syn@latest --model tiny-qwen --recipe tiny-sft --out sft-tiny":
        "trains for minutes on a CPU; test_train.py trains with the same recipes (slow)",
    "lbdata train sft --corpus syn@latest --model tiny-qwen --recipe tiny-sft --out sft-tiny --set save_strategy=steps "
    "--set save_steps=50 --resume": "needs the checkpoints of an interrupted run of the skipped training command above; "
    "test_train.py kills runs mid-training and resumes them (slow)",
    "lbdata train grpo --data syn@latest --model sft-tiny --recipe tiny-grpo --out grpo-tiny":
        "trains for minutes on a CPU and needs the SFT output above; test_train.py covers GRPO (slow)",
    "lbdata eval --model sft-tiny --data synthetic --limit 50 --seed 1 --max-new-tokens 320 --out evals/sft":
        "needs the SFT output of the skipped training command above",
    "lbdata eval --model grpo-tiny --data synthetic --limit 50 --seed 1 --max-new-tokens 320 --out evals/grpo":
        "needs the GRPO output of the skipped training command above",
    "lbdata eval compare evals/sft evals/grpo": "needs the two evaluations of trained models above",
    "lbdata eval compare evals/base evals/sft evals/grpo": "needs evaluations of trained models (make demo makes them)",
    "lbdata train sft --corpus look-back@latest --config semantic_back --num-processes 8 --deepspeed zero3 "
    "--out ckpt/sft": "8 GPUs and the recipe's Hub model",
    "lbdata train grpo --data look-back@latest --config semantic_back --model ckpt/sft --num-processes 8 "
    "--deepspeed zero3 --out ckpt/grpo": "8 GPUs and the SFT checkpoint of the line above",
    "lbdata eval --model ./checkpoints/sft --data mathvista,hallusionbench --variant semantic --batch-size 16":
        HUB + " (benchmark presets) and a trained checkpoint",
    "lbdata eval --base-url http://127.0.0.1:8000/v1 --served-model look-back-7b --data mathvista --batch-size 64":
        HUB + " (the mathvista preset) and a served model",
}
SLOW = {  # minutes of CPU between them: run in the full suite, deselected by -m "not slow"
    "lbdata eval --model tiny-qwen --data synthetic --limit 20 --seed 1 --max-new-tokens 128",
    "lbdata eval compare lbdata-work/evals/base-… lbdata-work/evals/sft-…",
    "lbdata attention --model tiny-qwen --image chart.png --question \"How tall is the red bar?\" --out att/ "
    "--max-new-tokens 128",
    "lbdata attention --model tiny-qwen --image chart.png --question \"How tall is the red bar?\" --out att/ "
    "--response '<think> … </think> <back> … </back> <think> … </think> \\boxed{12}'",
}


def readme_commands(text: str) -> list[str]:
    """The ``lbdata …`` lines of the shell code blocks, continuation lines joined, comments dropped."""
    commands: list[str] = []
    fence: str | None = None
    pending: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else (stripped[3:].strip() or "text")
            continue
        if fence not in ("bash", "sh", "shell"):
            continue
        if pending is None and not stripped.startswith("lbdata "):
            continue
        part = stripped.removesuffix("\\").strip()
        pending = part if pending is None else f"{pending} {part}"
        if not stripped.endswith("\\"):
            commands.append(_without_comment(pending))
            pending = None
    return commands


def _without_comment(command: str) -> str:
    """The command up to its shell comment (a ``#`` after whitespace, outside quotes), spaces collapsed."""
    quote = None
    for i, ch in enumerate(command):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote == ch else ch
        elif ch == "#" and quote is None and i and command[i - 1].isspace():
            command = command[:i]
            break
    return " ".join(command.split())


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_readme_has_commands_and_the_skip_list_names_only_readme_commands():
    assert len(COMMANDS) > 40
    assert not set(SKIPPED) - set(COMMANDS), "SKIPPED names commands the README no longer has"
    assert not SLOW - set(COMMANDS), "SLOW names commands the README no longer has"


# ---------------------------------------------------------------------------- the working folder
def _write_inputs(folder: Path) -> None:
    """The files the README's commands read: data/geo.jsonl, maps.jsonl, charts.jsonl, train.parquet, a saved dataset,
    validate.yaml, chart.png, an image folder, and rollouts for insert mode."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lbdata.sources.synthetic import SyntheticSource

    (folder / "data" / "img").mkdir(parents=True)
    rows = []
    for i, (color, answer) in enumerate([("red", "3"), ("blue", "5"), ("green", "7"), ("white", "2")]):
        (folder / "data" / "img" / f"{i}.png").write_bytes(png_bytes(color, (40 + i, 30)))
        rows.append({"id": f"g{i}", "images": [f"img/{i}.png"], "problem": f"<image>How many sides? ({color})",
                     "answer": answer})
    (folder / "data" / "geo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for name, some in (("maps.jsonl", rows[:2]), ("charts.jsonl", rows[2:])):
        (folder / "data" / name).write_text("".join(json.dumps(r) + "\n" for r in some), encoding="utf-8")
    (folder / "geo-images").mkdir()
    image = {"bytes": png_bytes("red"), "path": None}
    pq.write_table(pa.table({"img": [image] * 3, "q": ["What colour?", "How wide?", "How tall?"],
                             "gt": ["red", "32", "24"]}), folder / "train.parquet")
    features = datasets.Features({"image": datasets.Image(), "question": datasets.Value("string"),
                                  "answer": datasets.Value("string")})

    def split(n: int) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"image": [image] * n, "question": ["What colour?"] * n,
                                           "answer": ["red"] * n}, features=features)

    datasets.DatasetDict({"train": split(3), "test": split(2)}).save_to_disk(str(folder / "saved_dataset_folder"))
    text = README.read_text(encoding="utf-8")
    block = text.split("```yaml\nmax_backs:", 1)[1].split("```", 1)[0]
    (folder / "validate.yaml").write_text("max_backs:" + block, encoding="utf-8")
    first = next(r for r in SyntheticSource(seed=0, families=["bar_chart"]) if not hasattr(r, "reason"))
    (folder / "chart.png").write_bytes(first.images[0])
    evals = folder / "lbdata-work" / "evals" / "rollouts"
    evals.mkdir(parents=True)
    base = ("<think> The figure shows a shape and I count its sides one by one along the outline. </think> "
            "<think> Counting them gives the total. </think> \\boxed{{{}}}")
    evals.joinpath("results.jsonl").write_text("".join(
        json.dumps({"problem_id": f"geo:{r['id']}", "response": base.format(r["answer"])}) + "\n" for r in rows),
        encoding="utf-8")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    _write_inputs(folder)
    with FakeOpenAI(models=SERVED) as server:
        yield folder, {"OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-local-test", "HF_HUB_OFFLINE": "1",
                       "HF_DATASETS_OFFLINE": "1"}


def placeholders(folder: Path) -> dict[str, str]:
    """What the README writes as a placeholder, and what stands for it in this folder."""
    from lbdata.corpus import list_versions

    home = folder / "lbdata-work"
    demo = [m["version"] for m in list_versions("demo", home)]
    evals = sorted(p.relative_to(folder).as_posix() for p in (home / "evals").glob("tiny-qwen-*"))
    values = {
        "RUN": "synthetic-scene",  # a unique prefix of the run `lbdata generate` made
        "lbdata-work/evals/<name>/results.jsonl": "lbdata-work/evals/rollouts/results.jsonl",
        "look-back@latest": "demo@latest",  # the corpus the README built above
        "/datasets/geo-images": str(folder / "geo-images"),  # a folder of the reader's machine
    }
    if demo:
        values |= {"demo@<older>": f"demo@{demo[0]}", "mycorpus@3f2a": f"demo@{demo[0][:4]}",
                   "mycorpus@9c01": f"demo@{demo[-1][:4]}"}
    if evals:
        values |= {"lbdata-work/evals/base-…": evals[0], "lbdata-work/evals/sft-…": evals[-1]}
    return values


def _params():
    for i, command in enumerate(COMMANDS):
        marks = []
        if command in SKIPPED:
            marks.append(pytest.mark.skip(reason=SKIPPED[command]))
        if command in SLOW:
            marks.append(pytest.mark.slow)
        yield pytest.param(command, id=f"{i:02d}-{' '.join(command.split()[1:3])}", marks=marks)


@pytest.mark.parametrize("command", list(_params()))
def test_readme_command_runs_as_printed(workspace, command, monkeypatch, capsys):
    """The command goes through ``lbdata.cli.main`` (the console script's entry point) in this process, in the
    README's working folder: one interpreter start-up for all of them instead of one each."""
    import webbrowser

    from lbdata.cli import main

    folder, env = workspace
    values = placeholders(folder)
    argv = [values.get(word, word) for word in shlex.split(command)]
    assert argv[0] == "lbdata"
    monkeypatch.chdir(folder)
    for name in ("LBDATA_HOME", "LBDATA_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    monkeypatch.setattr(sys, "argv", argv)
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    assert code == 0, f"{' '.join(argv)}\n--- stdout\n{out}\n--- stderr\n{err}"
    assert "Traceback" not in err, err
    if "--open" in argv:
        assert opened and opened[0].startswith("file://")
