"""Options derived from the settings models: a bad value is one line naming the flag, exit 2; the --help
defaults and ranges are the models' own, so the command line and the library cannot drift apart."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from lbdata import cli
from lbdata.cli import app

# (command line, the flag the error must name)
BAD_VALUES = [
    ("generate --rpm 0", "--rpm"),
    ("generate --tpm -5", "--tpm"),
    ("generate --budget-usd 0", "--budget-usd"),
    ("generate --concurrency -1", "--concurrency"),
    ("generate --concurrency 0", "--concurrency"),
    ("generate --limit abc", "--limit"),
    ("generate --limit 0", "--limit"),
    ("generate --seed x", "--seed"),
    ("generate --seed 1.5", "--seed"),
    ("generate --samples 0", "--samples"),
    ("generate --variant foo", "--variant"),
    ("generate --variant semantic,bogus", "--variant"),
    ("generate --variant ,", "--variant"),
    ("generate --mode rewrite", "--mode"),
    ("generate --max-attempts 0", "--max-attempts"),
    ("generate --retries -1", "--retries"),
    ("generate --poll-interval 0", "--poll-interval"),
    ("generate --batch-max-bytes 10", "--batch-max-bytes"),
    ("generate --batch-max-requests 0", "--batch-max-requests"),
    ("generate --max-image-pixels 0", "--max-image-pixels"),
    ("generate --temperature -1", "--temperature"),
    ("generate --timeout 0", "--timeout"),
    ("generate --max-tokens 0", "--max-tokens"),
    ("generate --endpoint-concurrency 0", "--endpoint-concurrency"),
    ("build r --name c --reflection-rate 2", "--reflection-rate"),
    ("build r --name c --reflection-rate -0.1", "--reflection-rate"),
    ("build r --name c --test-size 1", "--test-size"),
    ("build r --name c --test-size -0.5", "--test-size"),
    ("build r --name c --per-problem 0", "--per-problem"),
    ("build r --name c --variant plain", "--variant"),
    ("build r --name c --variant sideways", "--variant"),
    ("build r --name c --seed abc", "--seed"),
    ("judge r --rpm 0", "--rpm"),
    ("judge r --tpm 0", "--tpm"),
    ("judge r --timeout 0", "--timeout"),
    ("judge r --concurrency 0", "--concurrency"),
    ("judge r --max-tokens 0", "--max-tokens"),
    ("judge r --temperature -1", "--temperature"),
    ("judge r --retries -1", "--retries"),
    ("judge r --budget-usd -3", "--budget-usd"),
    ("eval --model m --max-new-tokens 0", "--max-new-tokens"),
    ("eval --model m --temperature -1", "--temperature"),
    ("eval --model m --limit 0", "--limit"),
    ("eval --model m --batch-size 0", "--batch-size"),
    ("eval --model m --variant sideways", "--variant"),
    ("eval --model m --seed x", "--seed"),
    ("validate r --workers 0", "--workers"),
    ("show r --n 0", "--n"),
    ("sources show --n x", "--n"),
    ("train tiny-model --out m --seed x", "--seed"),
    ("train sft --corpus c --num-processes 0", "--num-processes"),
    ("train grpo --data synthetic --limit 0", "--limit"),
    ("attention --model m --image i.png --question q --out o --max-new-tokens 0", "--max-new-tokens"),
    ("view r --bogus", "--bogus"),
    ("generate --dry-run --limit 99999999999999999999", "--limit"),
    ("generate --seed -99999999999999999999", "--seed"),
    ("build r --name c --seed 99999999999999999999", "--seed"),
    ("eval --model m --temperature inf", "--temperature"),
    ("generate --rpm inf", "--rpm"),
    ("judge r --timeout inf", "--timeout"),
    ("sources show --n 99999999999999999999", "--n"),
    ("sources show --seed -99999999999999999999", "--seed"),
    ("train tiny-model --out m --seed 99999999999999999999", "--seed"),
    ("validate r --workers 99999999999999999999", "--workers"),
]


def run_main(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.delenv("LBDATA_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["lbdata", *argv])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("line", "flag"), BAD_VALUES, ids=[line for line, _ in BAD_VALUES])
def test_a_bad_value_is_one_line_naming_the_flag(line, flag, tmp_path, monkeypatch, capsys):
    code, out, err = run_main([*line.split(), "--home", str(tmp_path)] if not line.startswith(("sources", "train t",
                                                                                                "attention"))
                              else line.split(), monkeypatch, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {flag}"), lines[0]
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_the_error_says_what_the_bound_is_and_what_was_given(tmp_path, monkeypatch, capsys):
    _, _, err = run_main(["generate", "--rpm", "0", "--home", str(tmp_path)], monkeypatch, capsys)
    assert err.strip() == "error: --rpm: must be greater than 0 (got 0)"
    _, _, err = run_main(["build", "r", "--name", "c", "--test-size", "1", "--home", str(tmp_path)], monkeypatch, capsys)
    assert err.strip() == "error: --test-size: must be less than 1 (got 1)"
    _, _, err = run_main(["generate", "--concurrency", "-1", "--home", str(tmp_path)], monkeypatch, capsys)
    assert err.strip() == "error: --concurrency: must be greater than or equal to 1 (got -1)"
    _, _, err = run_main(["generate", "--limit", "abc", "--home", str(tmp_path)], monkeypatch, capsys)
    assert err.strip() == "error: --limit: must be a valid integer (got 'abc')"


def test_a_number_too_large_for_a_c_integer_is_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = run_main(["generate", "--limit", "1", "--run", "r", "--no-progress", "--home", str(tmp_path)],
                            monkeypatch, capsys)
    assert code == 0, err
    code, out, err = run_main(["validate", "r", "--workers", "9223372036854775807", "--no-progress", "--home",
                               str(tmp_path)], monkeypatch, capsys)  # a 64-bit number, too large for a C int
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: a number is too large") and "pass a smaller one" in lines[0]


def test_a_missing_option_or_an_unknown_one_is_one_line_pointing_at_help(tmp_path, monkeypatch, capsys):
    code, _, err = run_main(["build", "r", "--home", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "--name" in err and "build --help" in err
    code, _, err = run_main(["generate", "--rmp", "1"], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "--rmp" in err and "--rpm" in err


# ---------------------------------------------------------------------------- no drift from the models
def _derived_commands():
    """(command path, click command, callback) of every command whose options come from a settings model."""
    found = []

    def walk(command, path):
        callback = command.callback
        if callback is not None and hasattr(callback, "settings_model"):
            found.append((path, command, callback))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return found


def test_generate_build_judge_and_eval_derive_their_options():
    assert {" ".join(path) for path, _, _ in _derived_commands()} == {"generate", "build", "judge", "eval"}


@pytest.mark.parametrize("path", ["generate", "build", "judge", "eval"])
def test_every_derived_default_range_and_help_is_the_models(path):
    [(_, command, callback)] = [c for c in _derived_commands() if " ".join(c[0]) == path]
    model = callback.settings_model
    params = {p.name: p for p in command.params}
    help_text = CliRunner().invoke(app, [path, "--help"], env={"COLUMNS": "400"}).output
    for flag in callback.settings_flags:
        field = model.model_fields[flag.field]
        default = field.get_default(call_default_factory=True)
        shown = params[flag.name].default
        if shown is None:
            assert not default, f"{flag.flag} shows no default, the model has {default!r}"
        else:
            value = flag.to_model(shown) if flag.to_model else shown
            assert getattr(model(**{flag.field: value}), flag.field) == default, flag.flag
            if not isinstance(shown, bool):
                assert f"[default: {shown}]" in " ".join(help_text.split()), flag.flag
        assert cli.options.cli_help(model, flag) in " ".join(help_text.split()), flag.flag
        bounds = {k: getattr(m, k) for m in field.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
        if "gt" in bounds or "lt" in bounds:
            assert cli.options.describe_range(bounds) in help_text, flag.flag
        else:
            assert (params[flag.name].min, params[flag.name].max) == (bounds.get("ge"), bounds.get("le")), flag.flag


def _all_commands():
    """(command path, click command) of every command and group of the app."""
    found = []

    def walk(command, path):
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return found


@pytest.mark.parametrize("path", [" ".join(p) for p, _ in _all_commands()])
def test_help_reads_as_command_line_text_not_python(path):
    """No help speaks of None, of a settings class, or names its own option in brackets."""
    text = " ".join(CliRunner().invoke(app, [*path.split(), "--help"], env={"COLUMNS": "400"}).output.split())
    assert "None" not in text, text
    assert not re.search(r"\b[A-Z][a-z]+Config\b", text), text
    [(_, command)] = [(p, c) for p, c in _all_commands() if " ".join(p) == path]
    for param in command.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and param.help:
                assert f"({opt})" not in param.help, (opt, param.help)


def test_a_none_clause_reads_as_not_given_or_goes_where_the_option_has_a_default():
    from pydantic import BaseModel, Field

    class Model(BaseModel):
        rpm: float | None = Field(default=None, description="requests per minute (None: no limit)")
        limit: int | None = Field(default=200, description="problems to use (None: all)")
        roots: tuple[str, ...] = Field(default=(), description="more image folders (--image-root)")

    Flag = cli.options.Flag
    assert cli.options.cli_help(Model, Flag("rpm")) == "requests per minute (when not given: no limit)"
    assert cli.options.cli_help(Model, Flag("limit")) == "problems to use"  # 200 unless given: None cannot be typed
    assert cli.options.cli_help(Model, Flag("roots", ("--image-root",))) == "more image folders"
    assert Model.model_fields["rpm"].description == "requests per minute (None: no limit)"  # the library keeps its words


def test_ranges_read_as_before_in_help():
    text = " ".join(CliRunner().invoke(app, ["generate", "--help"], env={"COLUMNS": "400"}).output.split())
    assert "[x>=1]" in text and "[x>0]" in text
    text = " ".join(CliRunner().invoke(app, ["build", "--help"], env={"COLUMNS": "400"}).output.split())
    assert "[0.0<=x<=1.0]" in text and "[0.0<=x<1.0]" in text and "[default: semantic,solution]" in text


def test_a_value_at_the_bound_is_taken(tmp_path, monkeypatch, capsys):
    code, out, err = run_main(["generate", "--limit", "1", "--concurrency", "1", "--rpm", "600", "--retries", "0",
                               "--variant", "semantic", "--run", "r", "--no-progress", "--home", str(tmp_path)],
                              monkeypatch, capsys)
    assert code == 0, err
    assert "semantic_back  1 new traces" in out
    config = json.loads((tmp_path / "runs" / "r" / "config.json").read_text())["config"]
    assert config["rpm"] == 600 and config["limit"] == 1 and config["variants"] == ["semantic_back"]


# ---------------------------------------------------------------------------- python -m lbdata.cli and `serve`
def _registered_here() -> bool:
    return "lbdata.train.processor" in sys.modules


def test_a_process_spawned_from_python_m_lbdata_cli_registers_the_serve_processor(tmp_path):
    """`lbdata serve` under transformers >= 5.25 loads the model in a spawned process; started as
    `python -m lbdata.cli`, that process must import lbdata.cli again and register the image-only processor."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['lbdata', 'runs', '--home', {str(tmp_path)!r}]\n"
        "try:\n"
        "    runpy._run_module_as_main('lbdata.cli', alter_argv=False)  # what `python -m lbdata.cli` runs\n"
        "except SystemExit:\n"
        "    pass\n"
        "import multiprocessing  # after: importing it makes every process look like a spawned one\n"
        "from tests.test_cli_options import _registered_here\n"
        "with multiprocessing.get_context('spawn').Pool(1) as pool:\n"
        "    print('child', pool.apply(_registered_here))\n"
        "print('parent', _registered_here())\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for flag, expected in (("1", "child True"), ("", "child False")):
        env = {**os.environ, "LBDATA_SERVE_PROCESSOR": flag, "PYTHONPATH": root}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert expected in proc.stdout and "parent False" in proc.stdout, (flag, proc.stdout, proc.stderr)


def test_python_m_lbdata_cli_runs_the_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "lbdata.cli", "generate", "--rpm", "0"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --rpm: must be greater than 0 (got 0)"
