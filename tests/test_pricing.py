"""Price table and image token counting."""

import pytest

from lbdata.errors import ConfigError
from lbdata.pricing import ImageBilling, image_tokens, load_prices

GPT4O = ImageBilling(scheme="tiles", base=85, tile=170)


@pytest.mark.parametrize(
    ("size", "detail", "tokens"),
    [
        ((1024, 1024), "high", 85 + 170 * 4),  # scaled to 768 x 768: 2 x 2 tiles
        ((2048, 4096), "high", 85 + 170 * 6),  # fit in 2048: 1024 x 2048, then 768 x 1536: 2 x 3 tiles
        ((512, 512), "high", 85 + 170),  # small images are not scaled up
        ((513, 300), "high", 85 + 170 * 2),
        ((4000, 3000), "low", 85),
        ((4000, 3000), "auto", 85 + 170 * 4),  # 2048 x 1536, then 1024 x 768; auto counts as high
    ],
)
def test_gpt4o_image_tokens(size, detail, tokens):
    assert image_tokens(*size, detail, GPT4O) == tokens


def test_patch_and_qwen_schemes():
    assert image_tokens(64, 64, "high", ImageBilling(scheme="patches", multiplier=1.0)) == 4
    big = image_tokens(4000, 4000, "high", ImageBilling(scheme="patches", cap=1536, multiplier=1.0))
    assert 1000 < big <= 1536
    assert image_tokens(448, 448, "auto", ImageBilling(scheme="qwen")) == 256


def test_lookup_by_exact_name_then_longest_prefix():
    table = load_prices()
    assert table.lookup("gpt-4o").input == 2.50 and table.lookup("gpt-4o").output == 10.00
    assert table.lookup("gpt-4o-2024-08-06") == table.lookup("gpt-4o")
    assert table.lookup("gpt-4o-mini-2024-07-18").input == 0.15
    assert table.lookup("gpt-4o-2024-05-13").input == 5.00
    assert table.lookup("Qwen/Qwen2.5-VL-72B-Instruct") is None
    assert table.lookup("gpt-4o").cost(1_000_000, 100_000) == pytest.approx(3.50)


def test_a_prices_file_overrides_and_adds(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("models:\n  gpt-4o: {input: 1.0, output: 2.0}\n  my-vllm-model: {input: 0.1, output: 0.2}\n")
    table = load_prices(path)
    assert table.lookup("gpt-4o").input == 1.0 and table.lookup("my-vllm-model").output == 0.2
    assert table.lookup("gpt-4o-mini").input == 0.15  # untouched entries stay
    assert load_prices().lookup("gpt-4o").input == 2.50  # the built-in table is not changed


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("models:\n  x: {input: -1, output: 1}\n", "models.x.input"),
        ("models:\n  x: {input: 1}\n", "models.x.output"),
        ("modles: {}\n", "unknown key"),
        ("models: [1, 2\n", "not valid YAML"),
    ],
)
def test_bad_prices_files_name_the_problem(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_prices(path)


def test_missing_prices_file(tmp_path):
    with pytest.raises(ConfigError, match="--prices"):
        load_prices(tmp_path / "nope.yaml")


def test_cached_tokens_and_the_batch_multiplier():
    price = load_prices().lookup("gpt-4o")
    assert price.cached_input == 1.25 and price.batch == 0.5
    full = price.cost(2000, 500)
    assert full == pytest.approx((2000 * 2.5 + 500 * 10) / 1e6)
    assert price.cost(2000, 500, cached_tokens=1024) == pytest.approx(full - 1024 * 1.25 / 1e6)
    assert price.cost(2000, 500, batch=True) == pytest.approx(full / 2)
    assert price.cost(2000, 500, cached_tokens=5000) == pytest.approx(price.cost(2000, 500, cached_tokens=2000))
    plain = load_prices().lookup("gpt-4-turbo")  # no cached rate in the table: no discount
    assert plain.cost(1000, 0, cached_tokens=1000) == plain.cost(1000, 0)


def test_cost_per_accepted_trace(tmp_path):
    import math

    from lbdata.ledger import Ledger
    from lbdata.pricing import format_per_1k, run_cost
    from lbdata.records import Problem, TeacherInfo, Trace, Usage, Verdict

    with Ledger.create(tmp_path / "run") as led:
        assert run_cost(led, "h").per_1k_accepted is None and format_per_1k(None) == "-"
        for i in range(4):
            led.put_problem(Problem(id=f"s:{i}", images=[], question="q", answer="1", source="s"), [])
            trace = Trace(id=f"t{i}", problem_id=f"s:{i}", variant="semantic_back", teacher=TeacherInfo(backend="x", model="m"),
                          prompt_hash="p", text="x", usage=Usage(cost_usd=0.5))
            led.put_trace(trace)
            led.put_verdict(Verdict(trace_id=f"t{i}", accepted=i < 3, reasons=[] if i < 3 else ["answer_wrong"],
                                    config_hash="h"))
        cost = run_cost(led, "h")
        assert (cost.cost_usd, cost.validated, cost.accepted) == (2.0, 4, 3)
        assert cost.acceptance == pytest.approx(0.75) and cost.per_1k_accepted == pytest.approx(2000 / 3)
        assert math.isinf(run_cost(led, "h").per_1k_accepted) is False
