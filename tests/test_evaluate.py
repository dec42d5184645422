"""lbdata eval: presets on look-alike benchmark files, scoring and summaries, resume, insert-mode
rollouts, the served path against a local OpenAI-compatible server, and the tiny model on CPU."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lbdata.cli import app
from lbdata.errors import SourceError, UsageError
from lbdata.eval import (
    EvalItem,
    Generation,
    ServedModel,
    compare_reports,
    evaluate,
    load_eval_data,
    load_presets,
    read_results,
    split_data_specs,
)
from lbdata.prompts import SYSTEM_PROMPT, format_instruction
from lbdata.records import Problem
from lbdata.sources.base import image_ref
from tests.conftest import png_bytes
from tests.fake_openai_server import FakeOpenAI, write_trace

runner = CliRunner()


# ---------------------------------------------------------------------------- look-alike benchmark files


@pytest.fixture()
def mathvista_like(tmp_path) -> Path:
    """A MathVista-like parquet: decoded_image structs, `query` prompts, option-text gold answers."""
    rows = [
        {"pid": "1", "question": "Which length?", "query": "Hint: pick one.\nQuestion: Which length?\nChoices:\n(A) 10\n(B) 12\n(C) 14",
         "decoded_image": {"bytes": png_bytes("red", (56, 56)), "path": None}, "choices": ["10", "12", "14"],
         "answer": "12", "question_type": "multi_choice"},
        {"pid": "2", "question": "Find x.", "query": "Hint: integer answer.\nQuestion: Find x.",
         "decoded_image": {"bytes": png_bytes("blue", (56, 56)), "path": None}, "choices": None,
         "answer": "7", "question_type": "free_form"},
        {"pid": "3", "question": "Which one?", "query": "Question: Which one?\nChoices:\n(A) cat\n(B) dog",
         "decoded_image": {"bytes": png_bytes("green", (56, 56)), "path": None}, "choices": ["cat", "dog"],
         "answer": "dog", "question_type": "multi_choice"},
    ]
    path = tmp_path / "testmini.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture()
def hallusion_like(tmp_path) -> Path:
    """A HallusionBench-like jsonl: gold 1/0, questions with text after the first '?', one item without image."""
    folder = tmp_path / "hb"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes("white", (56, 56)))
    rows = [
        {"category": "VD", "question_id": "0", "question": "Is the left line longer than the right one? Answer yes.",
         "gt_answer": "1", "image": "a.png"},
        {"category": "VD", "question_id": "0", "question": "Is the circle red?", "gt_answer": "0", "image": "a.png"},
        {"category": "VS", "question_id": "1", "question": "Is Paris in France?", "gt_answer": "1", "image": None},
    ]
    path = folder / "hb.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture()
def messages_like(tmp_path) -> Path:
    """A LLaMA-Factory-style file (TallyQA / GeoMath / MME in the paper): messages + images."""
    folder = tmp_path / "tally"
    folder.mkdir()
    (folder / "0.png").write_bytes(png_bytes("red", (56, 56)))
    rows = [
        {"messages": [{"role": "user", "content": "<image>How many dogs are there?"},
                      {"role": "assistant", "content": "3"}], "images": ["0.png"]},
        {"messages": [{"role": "user", "content": "<image>How many cats are there?"}], "images": ["0.png"]},
    ]
    path = folder / "tally.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_presets_cover_the_papers_benchmarks():
    presets = load_presets()
    for name in ("mathvista", "mathverse", "mathvision", "wemath", "hallusionbench", "geometry3k", "tallyqa", "mme"):
        assert name in presets, name
    assert presets["mathvista"].source == "hf:AI4Math/MathVista@testmini"
    assert presets["mathvista"].answer_to_letter
    assert presets["hallusionbench"].answer_map == {"1": "yes", "0": "no"}


def test_mathvista_preset_maps_option_text_to_letters(mathvista_like):
    data = load_eval_data([f"mathvista:parquet:{mathvista_like}"])
    assert data.datasets == ["mathvista"]
    by_key = {it.problem.id.split(":")[-1]: it.problem for it in data.items}
    assert by_key["1"].answer == "B" and by_key["1"].choices == ["10", "12", "14"]
    assert by_key["1"].question.startswith("Hint: pick one.") and "(C) 14" in by_key["1"].question  # the query
    assert by_key["2"].answer == "7" and by_key["2"].choices is None
    assert by_key["3"].answer == "B"
    assert all(it.dataset == "mathvista" and len(it.images) == 1 for it in data.items)


def test_hallusionbench_preset_yes_no_gold_and_question_cut(hallusion_like):
    data = load_eval_data([f"hallusionbench:jsonl:{hallusion_like}"])
    problems = [it.problem for it in data.items]
    assert [p.answer for p in problems] == ["yes", "no"]
    assert problems[0].question == (
        "Is the left line longer than the right one? You final answer can only be \\boxed{yes} or \\boxed{no}."
    )
    # only items with an image: the third row is skipped with its reason, not dropped silently
    assert data.skipped == {"hallusionbench": {"missing_image": 1}}
    # question_id repeats in HallusionBench; the preset keys rows by position, so no duplicate_key rows
    assert len({p.id for p in problems}) == 2


def test_messages_layout_reads_the_user_and_assistant_turns(messages_like):
    data = load_eval_data([f"tallyqa:jsonl:{messages_like}"])
    assert [(it.problem.question, it.problem.answer) for it in data.items] == [("How many dogs are there?", "3")]
    assert data.skipped["tallyqa"] == {"missing_answer": 1}


def test_question_template_with_raw_columns(tmp_path):
    (tmp_path / "0.png").write_bytes(png_bytes())
    row = {"ID": "1", "question": "Which angle is larger?", "option": "A. 30; B. 40; C. 50; D. 60",
           "answer": "B", "image_path": "0.png"}
    path = tmp_path / "wemath.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (item,) = load_eval_data([f"wemath:jsonl:{path}"]).items
    assert item.problem.question == (
        "Which angle is larger?\nOptions: A. 30; B. 40; C. 50; D. 60\nYour final answer must be one of A, B, C, or D."
    )
    assert item.problem.answer == "B"


def test_a_preset_on_a_file_without_its_columns_names_them(jsonl_source):
    with pytest.raises(SourceError, match="decoded_image.*its columns are"):
        load_eval_data([f"mathvista:jsonl:{jsonl_source}"])


def test_preset_without_default_source_says_where_to_get_it():
    with pytest.raises(UsageError, match="testmini.parquet"):
        load_eval_data(["mathverse"])


def test_data_specs_split_on_commas_but_keep_synthetic_families():
    assert split_data_specs(["synthetic:bar_chart,geometry,mathvista:parquet:x.parquet", "jsonl:a.jsonl"]) == [
        "synthetic:bar_chart,geometry",
        "mathvista:parquet:x.parquet",
        "jsonl:a.jsonl",
    ]
    with pytest.raises(UsageError, match="endless"):
        load_eval_data(["synthetic"])


# ---------------------------------------------------------------------------- scoring with a scripted model


def make_item(pid: str, answer: str, dataset: str = "toy", choices: list[str] | None = None) -> EvalItem:
    blob = png_bytes("red", (56, 56))
    problem = Problem(id=f"toy:{pid}", images=[image_ref(blob)], question=f"Question {pid}: what is the value?",
                      answer=answer, choices=choices, source="toy")
    return EvalItem(dataset, problem, [blob])


class ScriptedModel:
    """A Generator that answers from a table (problem id -> response) and records its calls."""

    label = "scripted"

    def __init__(self, responses: dict[str, str]):
        self.responses = responses
        self.calls: list[list[str]] = []
        self.prompts: list[str] = []

    def fingerprint(self) -> str:
        return "scripted-1"

    def generate(self, items, prompts, params):
        self.calls.append([it.problem.id for it in items])
        self.prompts.extend(prompts)
        return [Generation(self.responses[it.problem.id], tokens=len(self.responses[it.problem.id].split()),
                           finish_reason="stop") for it in items]


def scripted_set():
    items = [make_item("1", "42"), make_item("2", "7"), make_item("3", "B", choices=["3", "5"]),
             make_item("4", "9", dataset="other")]
    responses = {
        "toy:1": write_trace("semantic_back", "42"),  # right, with a back
        "toy:2": write_trace("semantic_back", "8"),  # wrong, with a back
        "toy:3": "<think> The two options differ, and the figure shows five. </think> \\boxed{5}",  # right, no back
        "toy:4": "I cannot tell.",  # no tags, no box
    }
    return items, responses


def test_scores_rates_and_back_positions():
    items, responses = scripted_set()
    model = ScriptedModel(responses)
    report = evaluate(model, items, "semantic", batch_size=3)
    assert model.calls == [["toy:1", "toy:2", "toy:3"], ["toy:4"]]
    assert all(p.endswith(format_instruction("semantic_back")) for p in model.prompts)
    rows = {r.problem_id: r for r in report.rows}
    assert rows["toy:1"].correct and rows["toy:1"].has_back and rows["toy:1"].well_formed
    assert not rows["toy:2"].correct and rows["toy:2"].pred == "8"
    assert rows["toy:3"].correct and not rows["toy:3"].has_back  # option text 5 is letter B
    assert not rows["toy:3"].well_formed  # the semantic variant requires a real <back>
    assert rows["toy:4"].pred is None and not rows["toy:4"].correct
    back_start = responses["toy:1"].index("<back>") / len(responses["toy:1"])
    assert rows["toy:1"].back_positions == [round(back_start, 4)]

    summary = report.summary()
    toy = summary["datasets"]["toy"]
    assert toy["n"] == 3
    assert toy["accuracy"] == pytest.approx(2 / 3)
    assert toy["trigger_rate"] == pytest.approx(2 / 3)
    assert toy["well_formed_rate"] == pytest.approx(2 / 3)
    assert toy["mean_backs"] == pytest.approx(2 / 3)
    assert toy["accuracy_with_back"] == pytest.approx(0.5) and toy["accuracy_without_back"] == 1.0
    assert toy["back_position_mean"] == pytest.approx(back_start, abs=1e-3)
    assert sum(toy["back_position_histogram"]) == 2
    assert toy["mean_response_tokens"] == pytest.approx(sum(len(responses[k].split()) for k in ("toy:1", "toy:2", "toy:3")) / 3)
    assert summary["datasets"]["other"]["accuracy"] == 0.0
    assert summary["overall"]["n"] == 4 and summary["overall"]["accuracy"] == 0.5
    md = report.to_markdown()
    assert "| toy | 3 | 66.7 | 66.7 | 66.7 |" in md and "**all**" in md


def test_results_jsonl_has_every_field_and_feeds_insert_mode(tmp_path):
    from lbdata.insert import load_base_traces

    items, responses = scripted_set()
    evaluate(ScriptedModel(responses), items, "solution", out_dir=tmp_path / "ev")
    lines = [json.loads(x) for x in (tmp_path / "ev" / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    for key in ("problem_id", "dataset", "question", "gold", "choices", "response", "pred", "correct", "has_back",
                "back_count", "well_formed", "variant", "model"):
        assert key in lines[0], key
    assert lines[0]["variant"] == "solution_back" and lines[0]["model"] == "scripted"
    base = load_base_traces(tmp_path / "ev" / "results.jsonl")
    assert base["toy:1"] == [responses["toy:1"].strip()]
    assert set(base) == {"toy:1", "toy:2", "toy:3", "toy:4"}
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["datasets"]["toy"]["n"] == 3
    assert (tmp_path / "ev" / "summary.md").read_text().startswith("# Evaluation of scripted")


def test_rerun_resumes_and_other_settings_are_refused(tmp_path):
    items, responses = scripted_set()
    out = tmp_path / "ev"
    first = ScriptedModel(responses)
    evaluate(first, items[:2], "semantic", out_dir=out)
    # a crash mid-write leaves half a line: that problem is answered again, the others are kept
    with (out / "results.jsonl").open("a") as fh:
        fh.write('{"problem_id": "toy:3", "datas')
    second = ScriptedModel(responses)
    report = evaluate(second, items, "semantic", out_dir=out)
    assert second.calls == [["toy:3", "toy:4"]]
    assert [r.problem_id for r in report.rows] == ["toy:1", "toy:2", "toy:3", "toy:4"]
    assert [r.problem_id for r in read_results(out)] == ["toy:1", "toy:2", "toy:3", "toy:4"]
    third = ScriptedModel(responses)
    evaluate(third, items, "semantic", out_dir=out)
    assert third.calls == []
    with pytest.raises(UsageError, match="different variant"):
        evaluate(ScriptedModel(responses), items, "solution", out_dir=out)


def test_an_answer_written_twice_counts_once(tmp_path):
    """Two evals into one --out (the same command in two terminals) both append every answer; a
    resume then counted each problem twice in the summary."""
    items, responses = scripted_set()
    out = tmp_path / "ev"
    evaluate(ScriptedModel(responses), items[:2], "semantic", out_dir=out)
    results = out / "results.jsonl"
    results.write_text(results.read_text() * 2)
    report = evaluate(ScriptedModel(responses), items, "semantic", out_dir=out)
    assert [r.problem_id for r in report.rows] == ["toy:1", "toy:2", "toy:3", "toy:4"]
    assert json.loads((out / "summary.json").read_text())["datasets"]["toy"]["n"] == 3


def test_a_second_eval_into_a_folder_being_written_is_refused_and_the_first_one_is_untouched(tmp_path):
    from lbdata.workspace import RunLock

    items, responses = scripted_set()
    out = tmp_path / "ev"
    out.mkdir()
    with RunLock(out):  # another `lbdata eval --out ev` is writing
        model = ScriptedModel(responses)
        with pytest.raises(UsageError, match="being written by another lbdata eval.*another --out"):
            evaluate(model, items, "semantic", out_dir=out)
        assert model.calls == [] and not (out / "results.jsonl").exists()
    report = evaluate(ScriptedModel(responses), items, "semantic", out_dir=out)  # free again
    assert len(report.rows) == 4


def test_compare_puts_two_evaluations_side_by_side(tmp_path):
    items, responses = scripted_set()
    evaluate(ScriptedModel(responses), items, "semantic", out_dir=tmp_path / "a")
    better = dict(responses, **{"toy:2": write_trace("semantic_back", "7")})
    evaluate(ScriptedModel(better), items, "semantic", out_dir=tmp_path / "b")
    table = compare_reports(tmp_path / "a", tmp_path / "b")
    toy = next(line for line in table.splitlines() if line.startswith("| toy "))
    cells = [c.strip() for c in toy.strip("|").split("|")]
    assert cells[:6] == ["toy", "3", "3", "66.7", "100.0", "+33.3"]
    result = runner.invoke(app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert toy in result.output


def test_compare_refuses_a_file_that_is_not_a_summary(tmp_path):
    items, responses = scripted_set()
    evaluate(ScriptedModel(responses), items, "semantic", out_dir=tmp_path / "a")
    (tmp_path / "notes.txt").write_text("not json")
    for bad in (tmp_path / "notes.txt", tmp_path / "a" / "config.json"):
        with pytest.raises(UsageError, match=r"is not a summary\.json of `lbdata eval`"):
            compare_reports(bad, tmp_path / "a")


def test_an_out_that_is_a_file_or_under_one_is_refused_before_any_request(tmp_path):
    items, responses = scripted_set()
    taken = tmp_path / "taken"
    taken.write_text("x")
    asked = ScriptedModel(responses)
    with pytest.raises(UsageError, match="is a file; pass --out with a folder"):
        evaluate(asked, items, "semantic", out_dir=taken)
    with pytest.raises(UsageError, match="cannot write the evaluation to .*pass --out with a writable folder"):
        evaluate(asked, items, "semantic", out_dir=taken / "below")
    assert taken.read_text() == "x" and asked.calls == []


def test_compare_three_evaluations_a_column_each(tmp_path):
    items, responses = scripted_set()
    evaluate(ScriptedModel(responses), items, "semantic", out_dir=tmp_path / "base")
    evaluate(ScriptedModel(dict(responses, **{"toy:2": write_trace("semantic_back", "7")})), items, "semantic",
             out_dir=tmp_path / "sft")
    no_backs = {k: "<think> It reads seven. </think> \\boxed{7}" for k in responses}
    evaluate(ScriptedModel(no_backs), items, "semantic", out_dir=tmp_path / "grpo")
    result = runner.invoke(app, ["eval", "compare", *(str(tmp_path / n) for n in ("base", "sft", "grpo"))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    toy = lines.index("| toy | base | sft | grpo |")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]]
            for line in lines[toy + 2 : toy + 10]}
    assert rows["accuracy %"] == ["66.7", "100.0 (+33.3)", "33.3 (-33.3)"]
    assert rows["trigger %"] == ["66.7", "66.7 (+0.0)", "0.0 (-66.7)"]
    assert rows["failed requests"] == ["0", "0", "0"]
    assert "| all datasets | base | sft | grpo |" in lines


# ---------------------------------------------------------------------------- the served path


def test_eval_through_an_openai_compatible_server(tmp_path, mathvista_like):
    items = [make_item("1", "42"), make_item("2", "7")]
    with FakeOpenAI(models=("served-look-back",)) as server:
        model = ServedModel(server.url, "served-look-back")
        report = evaluate(model, items, "semantic", max_new_tokens=64, batch_size=2)
        log = list(server.log)
    assert len(log) == 2
    for entry in log:
        assert entry.text.startswith(SYSTEM_PROMPT)  # the system turn, then the user turn
        assert entry.text.endswith(format_instruction("semantic_back"))
        assert entry.max_tokens == 64
        assert entry.images and entry.images[0]["prefix"].startswith("data:image/")
    rows = {r.problem_id: r for r in report.rows}
    assert rows["toy:1"].correct and not rows["toy:2"].correct  # the fake server always boxes 42
    assert all(r.has_back and r.well_formed and r.model == "served-look-back" for r in report.rows)
    assert all(r.response_tokens and r.finish_reason == "stop" for r in report.rows)


def test_eval_requests_send_the_question_verbatim_after_the_system_prompt():
    from lbdata.eval.served import EvalRequests
    from lbdata.teachers.base import TraceRequest

    item = make_item("1", "42")
    prompt = "Exactly this text, no teacher template.\n" + format_instruction("semantic_back")
    teacher = EvalRequests("m", base_url="http://127.0.0.1:9/v1", api_key="EMPTY", max_tokens=16)
    request = TraceRequest(problem=item.problem.model_copy(update={"question": prompt}), images=item.images,
                           variant="plain")
    messages = teacher.messages(request)
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert [m["role"] for m in messages] == ["system", "user"]
    parts = messages[1]["content"]
    assert parts[0]["type"] == "image_url" and parts[-1] == {"type": "text", "text": prompt}


def test_an_output_folder_is_prepared_for_appending(tmp_path):
    from lbdata.eval.loop import _start_out_dir

    items, responses = scripted_set()
    out = tmp_path / "ev"
    evaluate(ScriptedModel(responses), items[:2], "semantic", out_dir=out)
    config = json.loads((out / "config.json").read_text())
    with (out / "results.jsonl").open("a") as fh:
        fh.write('{"problem_id": "toy:3", "cut sho')  # a crash mid-line
    order = {(it.dataset, it.problem.id): i for i, it in enumerate(items)}
    rows, todo = _start_out_dir(out, config["identity"], items, order, batch_size=5)
    assert sorted(r.problem_id for r in rows) == ["toy:1", "toy:2"]
    assert [it.problem.id for it in todo] == ["toy:3", "toy:4"]
    assert (out / "results.jsonl").read_text().endswith("}\n")  # the cut line is gone
    assert json.loads((out / "config.json").read_text())["params"] == {"batch_size": 5}
    assert not (out / "config.json.tmp").exists()


def test_served_path_retries_transient_errors_and_records_hopeless_requests():
    from tests.fake_openai_server import Fault

    items = [make_item("1", "42"), make_item("2", "42")]
    faults = [Fault("server_error", match="Question 1", times=1), Fault("context", match="Question 2", times=-1)]
    with FakeOpenAI(models=("m",), faults=faults) as server:
        report = evaluate(ServedModel(server.url, "m"), items, "semantic", batch_size=2)
    rows = {r.problem_id: r for r in report.rows}
    assert rows["toy:1"].correct  # 500 once, then answered
    assert rows["toy:2"].response == "" and rows["toy:2"].finish_reason == "error" and not rows["toy:2"].correct
    assert rows["toy:2"].error and rows["toy:1"].error is None


def test_served_requests_are_retried_by_the_teachers_sender_up_to_max_attempts(monkeypatch):
    import time

    from lbdata.errors import TeacherError
    from lbdata.generate import sender
    from tests.fake_openai_server import Fault

    monkeypatch.setattr(sender, "BACKOFF_INITIAL_S", 0.01)
    faults = [Fault("rate_limit", match="Question 1", times=1, retry_after=0.3),
              Fault("server_error", match="Question 2", times=-1)]
    with FakeOpenAI(models=("m",), faults=faults) as server:
        started = time.monotonic()
        with pytest.raises(TeacherError, match=r"kept failing for toy:2 \(server_error.*after 3 attempts"):
            evaluate(ServedModel(server.url, "m", max_attempts=3), [make_item("2", "42")], "semantic")
        assert sum("Question 2" in e.text for e in server.log) == 3
        assert time.monotonic() - started < 1.0  # the sender's backoff (shortened here), not a loop of its own
        started = time.monotonic()
        report = evaluate(ServedModel(server.url, "m", max_attempts=3), [make_item("1", "42")], "semantic")
    assert report.rows[0].correct and time.monotonic() - started >= 0.3  # the server's Retry-After was kept


def test_failed_requests_are_counted_apart_from_wrong_answers_and_asked_again(tmp_path):
    from tests.fake_openai_server import Fault

    items = [make_item("1", "42"), make_item("2", "42"), make_item("3", "7")]
    out = tmp_path / "ev"
    with FakeOpenAI(models=("m",), faults=[Fault("context", match="Question 2", times=1)]) as server:
        report = evaluate(ServedModel(server.url, "m"), items, "semantic", batch_size=3, out_dir=out)
        toy = report.summary()["datasets"]["toy"]
        # one right, one wrong (the fake server boxes 42, the gold is 7), one failed: not a wrong answer
        assert (toy["n"], toy["answered"], toy["failed"]) == (3, 2, 1)
        assert toy["accuracy"] == 0.5 and toy["trigger_rate"] == 1.0
        assert "| toy | 3 | 50.0 | 100.0 | 100.0 |" in (out / "summary.md").read_text()
        before = len(server.log)
        again = evaluate(ServedModel(server.url, "m"), items, "semantic", batch_size=3, out_dir=out)  # the re-run
        asked = [entry.text for entry in list(server.log)[before:]]
    assert len(asked) == 1 and "Question 2" in asked[0]  # only the failed problem is asked again
    toy = again.summary()["datasets"]["toy"]
    assert (toy["failed"], toy["accuracy"]) == (0, pytest.approx(2 / 3))
    assert len(read_results(out)) == 3


def test_cli_eval_against_a_server(tmp_path, mathvista_like):
    out = tmp_path / "ev"
    with FakeOpenAI(models=("m",)) as server:
        result = runner.invoke(app, [
            "eval", "--base-url", server.url, "--served-model", "m", "--data", f"mathvista:parquet:{mathvista_like}",
            "--variant", "solution", "--out", str(out), "--no-progress",
        ])
    assert result.exit_code == 0, result.output
    assert "| mathvista | 3 |" in result.output
    rows = read_results(out)
    assert [r.gold for r in rows] == ["B", "7", "B"] and all(r.variant == "solution_back" for r in rows)


def test_cli_eval_needs_exactly_one_model(tmp_path):
    result = runner.invoke(app, ["eval", "--model", str(tmp_path), "--base-url", "http://x/v1", "--data", "synthetic"])
    assert result.exit_code != 0
    assert "either --model PATH or --base-url" in str(result.exception or result.output)
    listing = runner.invoke(app, ["eval", "presets"])
    assert listing.exit_code == 0 and "hallusionbench" in listing.output and "mathvista" in listing.output


# ---------------------------------------------------------------------------- the tiny model


@pytest.mark.slow
def test_eval_on_the_tiny_model_on_cpu(tiny_model_dir, tmp_path, mathvista_like):
    from lbdata.eval import LocalModel

    model = LocalModel(tiny_model_dir)
    data = load_eval_data([f"mathvista:parquet:{mathvista_like}"])
    report = evaluate(model, data.items, "semantic", max_new_tokens=5, batch_size=2, out_dir=tmp_path / "ev")
    assert len(report.rows) == 3
    for row in report.rows:
        assert row.model == str(tiny_model_dir) and row.response_tokens is not None and row.response_tokens <= 5
        assert row.finish_reason in ("stop", "length")
    s = report.summary()["datasets"]["mathvista"]
    assert s["n"] == 3 and 0.0 <= s["accuracy"] <= 1.0 and not math.isnan(s["trigger_rate"])



def test_batches_are_left_padded(tiny_model_dir):
    """The next-token logits of a short prompt are the same alone and in a batch with a longer one."""
    import torch

    from lbdata.eval import LocalModel

    model = LocalModel(tiny_model_dir)
    image = png_bytes("red", (56, 56))
    short, long = "How many?", "A much longer question about the picture, with many more words, so it needs padding?"
    batch = model.encode([short, long], [[image], [image]])
    alone = model.encode([short], [[image]])
    assert batch["attention_mask"][0, 0] == 0  # padding on the left
    with torch.inference_mode():
        in_batch = model.model(**batch).logits[0, -1]
        by_itself = model.model(**alone).logits[0, -1]
    assert torch.allclose(in_batch, by_itself, atol=1e-4)


@pytest.mark.slow
def test_eval_against_the_tiny_model_served(tiny_server, tmp_path):
    base_url, name = tiny_server
    items = [make_item("1", "42")]
    report = evaluate(ServedModel(base_url, name), items, "none", max_new_tokens=4, out_dir=tmp_path / "ev")
    (row,) = report.rows
    assert row.variant == "plain" and row.model == name and isinstance(row.response, str)
