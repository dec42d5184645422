"""EvalConfig: the one home of the evaluation's settings, which GenerationParams, evaluate and `lbdata eval` share."""

from __future__ import annotations

import pytest

from lbdata.cli import evaluation
from lbdata.errors import UsageError
from lbdata.eval import EvalConfig, GenerationParams, evaluate
from tests.test_evaluate import ScriptedModel, scripted_set


class RecordingModel(ScriptedModel):
    """A scripted model that also keeps the sampling settings it was asked for."""

    def __init__(self, responses):
        super().__init__(responses)
        self.params: list[GenerationParams] = []

    def generate(self, items, prompts, params):
        self.params.append(params)
        return super().generate(items, prompts, params)


def test_generation_params_take_the_configs_defaults_and_bounds():
    defaults = EvalConfig()
    assert GenerationParams() == defaults.generation
    assert (GenerationParams().max_new_tokens, GenerationParams().temperature, GenerationParams().seed) == (
        defaults.max_new_tokens, defaults.temperature, defaults.seed)
    with pytest.raises(UsageError, match=r"^max_new_tokens: must be greater than or equal to 1 \(got 0\)$"):
        GenerationParams(max_new_tokens=0)
    with pytest.raises(UsageError, match=r"^temperature: must be greater than or equal to 0 \(got -0.5\)$"):
        GenerationParams(temperature=-0.5)


def test_evaluate_takes_a_config_and_keywords_replace_its_settings():
    items, responses = scripted_set()
    config = EvalConfig(variant="solution", max_new_tokens=99, temperature=0.5, seed=7, batch_size=3)
    model = RecordingModel(responses)
    report = evaluate(model, items, config=config)
    assert model.calls == [["toy:1", "toy:2", "toy:3"], ["toy:4"]]  # batch_size 3
    assert set(model.params) == {GenerationParams(max_new_tokens=99, temperature=0.5, seed=7)}
    assert report.variant == "solution_back"
    assert report.params == {"max_new_tokens": 99, "temperature": 0.5, "seed": 7}

    model = RecordingModel(responses)
    report = evaluate(model, items, "semantic", config=config, batch_size=4, seed=1)
    assert model.calls == [["toy:1", "toy:2", "toy:3", "toy:4"]]
    assert set(model.params) == {GenerationParams(max_new_tokens=99, temperature=0.5, seed=1)}
    assert report.variant == "semantic_back"


def test_evaluate_without_a_config_uses_its_defaults_and_names_a_bad_setting():
    items, responses = scripted_set()
    model = RecordingModel(responses)
    report = evaluate(model, items)
    assert report.variant == EvalConfig().variant and set(model.params) == {EvalConfig().generation}
    assert len(model.calls) == -(-len(items) // EvalConfig().batch_size)
    with pytest.raises(UsageError, match="^batch_size: must be greater than or equal to 1"):
        evaluate(RecordingModel(responses), items, batch_size=0)
    with pytest.raises(UsageError, match="^variant: unknown variant 'sideways'"):
        evaluate(RecordingModel(responses), items, "sideways")


def test_lbdata_eval_derives_its_options_from_the_library_config():
    assert evaluation.eval_run.settings_model is EvalConfig
    assert {f.field for f in evaluation.eval_run.settings_flags} == set(EvalConfig.model_fields)


def test_the_command_line_imports_the_config_without_the_evaluation_machinery():
    """`lbdata --help` builds eval's options from EvalConfig; that must not load sources, presets or scoring."""
    import subprocess
    import sys

    code = "import sys, lbdata.cli; print(sorted(m for m in sys.modules if m.startswith('lbdata.eval')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['lbdata.eval', 'lbdata.eval.config']"


def test_every_public_name_of_the_package_resolves_to_its_module():
    import lbdata.eval

    for name in lbdata.eval.__all__:
        assert getattr(lbdata.eval, name) is not None, name
    assert lbdata.eval.evaluate.__module__ == "lbdata.eval.loop" and EvalConfig.__module__ == "lbdata.eval.config"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lbdata.eval.nope  # noqa: B018
