"""`lbdata view` in a real browser: Debian's chromium, headless, driving the site opened from disk (file://).

Skipped only when /usr/bin/chromium is absent (`make browser-deps` installs it; `make test` runs that).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_view import make_corpora, make_run

from lbdata.ledger import Ledger
from lbdata.validate import ValidationConfig, parse_trace
from lbdata.view import ViewConfig, build_diff_view, build_run_view

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed; `make browser-deps` installs it (apt)"
    ),
]


@contextmanager
def browser_page(profile: Path) -> Iterator[tuple[object, list[str], list[str]]]:
    """A page of a fresh chromium profile, with the URLs it requested and the script errors it raised."""
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = ctx.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page, requests, errors
        finally:
            ctx.close()


def wait_count(page, expected: int) -> None:
    page.wait_for_selector(f'#count[data-state=ready][data-count="{expected}"]', timeout=15_000)


def shown_segments(page) -> list[list[str]]:
    return page.eval_on_selector_all(
        "#sample .trace .seg", "els => els.map(e => [e.getAttribute('data-kind'), e.textContent])"
    )


def test_filter_by_reason_open_sample_search_and_keys(tmp_path):
    run = make_run(tmp_path / "run", limit=12, defects=9)
    site = tmp_path / "site"
    build_run_view(run, site, config=ViewConfig(shard_size=5))  # every filter spans several shards
    with Ledger.open(run) as ledger:
        traces = list(ledger.iter_traces())
        verdicts = {v.trace_id: v for v in ledger.iter_verdicts(ValidationConfig().config_hash)}
    back_empty = [t for t in traces if "back_empty" in verdicts[t.id].reasons]
    wrong = [t for t in traces if "answer_wrong" in verdicts[t.id].reasons]
    assert len(back_empty) >= 3 and wrong

    with browser_page(tmp_path / "profile") as (page, requests, errors):
        page.goto((site / "samples.html").as_uri())
        wait_count(page, len(traces))
        assert page.text_content("#count") == f"{len(traces)} of {len(traces)} samples"

        # filter by a reason: the count shown is the ledger's
        page.select_option("#filter-reason", "back_empty")
        wait_count(page, len(back_empty))
        assert page.text_content("#count") == f"{len(back_empty)} of {len(traces)} samples"
        assert "reason=back_empty" in page.evaluate("location.hash")

        # open the second match; its coloured segments are the validators' parse of the trace
        page.click("#list li.item >> nth=1")
        target = back_empty[1]
        page.wait_for_selector(f'#sample[data-state=ready][data-id="{target.id}"]')
        parsed = parse_trace(target.text)
        want = [[s.kind, target.text[s.span[0] : s.span[1]]] for s in parsed.segments]
        want.append(["answer", f"\\boxed{{{parsed.answer}}}"])
        assert shown_segments(page) == want
        assert any(kind == "back" and "Checked." in text for kind, text in shown_segments(page))
        with Ledger.open(run) as ledger:
            assert page.text_content("#sample .gold") == ledger.get_problem(target.problem_id).answer
        assert page.get_attribute("#sample .tag.status", "class").endswith("rejected")

        # keyboard: j / k move through the matches, / focuses the search box
        page.keyboard.press("j")
        page.wait_for_selector(f'#sample[data-state=ready][data-id="{back_empty[2].id}"]')
        page.keyboard.press("k")
        page.wait_for_selector(f'#sample[data-state=ready][data-id="{back_empty[1].id}"]')

        # the thumbnail opens the full image from disk
        page.click("#sample a.thumb")
        page.wait_for_selector("#lightbox:not([hidden])")
        assert page.evaluate("document.querySelector('#lightbox img').naturalWidth") > 0
        page.keyboard.press("Escape")
        page.wait_for_selector("#lightbox", state="hidden")
        screenshot = tmp_path / "samples.png"
        page.screenshot(path=str(screenshot))
        assert screenshot.stat().st_size > 20_000

        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "search"
        page.keyboard.type("zzz-not-it")
        page.keyboard.press("Enter")
        wait_count(page, 0)  # no back_empty trace has the wrong answer
        page.wait_for_selector("#sample[data-state=empty]")
        page.keyboard.press("Escape")
        page.select_option("#filter-reason", "")
        wait_count(page, len(wrong))  # text search scans every shard
        assert page.get_attribute("#sample", "data-id") in {t.id for t in wrong}

        # the overview's plots load, and its reason links land on the filtered browser
        page.goto((site / "index.html").as_uri())
        widths = page.eval_on_selector_all(".plots img", "els => els.map(e => e.complete && e.naturalWidth)")
        assert len(widths) == 5 and all(w > 0 for w in widths)
        page.click('a[href="samples.html#reason=answer_wrong"]')
        wait_count(page, len(wrong))
        page.screenshot(path=str(tmp_path / "overview-link.png"))

    assert not errors
    assert requests and all(u.startswith("file://") for u in requests), [u for u in requests if "file://" not in u]


def test_diff_site_filters_added_and_changed(tmp_path):
    home, spec_a, spec_b = make_corpora(tmp_path / "home")
    summary = build_diff_view(spec_a, spec_b, tmp_path / "diff", home=home, config=ViewConfig(shard_size=10))
    c = summary.counts
    with browser_page(tmp_path / "profile") as (page, requests, errors):
        page.goto((tmp_path / "diff" / "index.html").as_uri())
        page.click('a[href="samples.html#change=changed"]')
        wait_count(page, c["changed"])
        page.wait_for_selector("#sample[data-state=ready] .tag.status.changed")
        page.select_option("#filter-change", "added")
        wait_count(page, c["added"])
        page.screenshot(path=str(tmp_path / "diff.png"))
    assert not errors
    assert all(u.startswith("file://") for u in requests)


def test_search_beyond_the_shard_cache(tmp_path):
    """More shards than the browser keeps (64): the search still counts every match, and evicted rows reload."""
    from lbdata.generate import GenerateConfig, generate

    run = tmp_path / "run"
    generate(GenerateConfig(limit=40), run)
    build_run_view(run, tmp_path / "site", config=ViewConfig(shard_size=1))
    with Ledger.open(run) as ledger:
        traces = list(ledger.iter_traces())
        hits = [t for t in traces if "triangle" in (ledger.get_problem(t.problem_id).question + t.text).lower()]
    assert len(traces) == 80 and 0 < len(hits) < len(traces)
    with browser_page(tmp_path / "profile") as (page, _, errors):
        page.goto((tmp_path / "site" / "samples.html").as_uri() + "#q=TRIANGLE")
        wait_count(page, len(hits))
        page.wait_for_selector(f'#sample[data-state=ready][data-id="{hits[0].id}"]')  # its shard was evicted
        page.keyboard.press("G")
        page.wait_for_selector(f'#sample[data-state=ready][data-id="{hits[-1].id}"]')
    assert not errors


def test_hostile_question_and_trace_are_shown_as_text(tmp_path):
    """Markup in a question, a trace, a failed request's error and the run's name runs nowhere in the site."""
    from test_view import HOSTILE, make_hostile_run

    run = make_hostile_run(tmp_path / "r<i>\"'")
    build_run_view(run, tmp_path / "site")
    with browser_page(tmp_path / "profile") as (page, requests, errors):
        page.goto((tmp_path / "site" / "samples.html").as_uri() + "#q=single")
        wait_count(page, 1)
        page.wait_for_selector('#sample[data-state=ready][data-id="evil-trace"]')
        shown = page.text_content("#sample")
        assert f"What is {HOSTILE}?" in shown
        assert any(kind == "back" and HOSTILE in text for kind, text in shown_segments(page))
        assert page.eval_on_selector_all("#sample script, #sample img[src=x], #sample textarea", "els => els.length") == 0
        page.goto((tmp_path / "site" / "index.html").as_uri())
        assert page.text_content("h1") == "Run r<i>\"'"
        assert page.title() == "lbdata · r<i>\"'"
        assert HOSTILE in page.text_content("body")
        assert page.evaluate("window.__pwned === undefined")
    assert not errors
    assert all(u.startswith("file://") for u in requests)


def test_judge_claims_show_on_the_sample_as_text(tmp_path):
    """A judge's claims (one carrying markup) appear under the trace with true / false / null, as text."""
    from test_view import HOSTILE, add_judgments

    run = make_run(tmp_path / "run", limit=3, defects=0)
    judged_id, unjudged_id = add_judgments(run)
    build_run_view(run, tmp_path / "site")
    with Ledger.open(run) as ledger:
        order = [t.id for t in ledger.iter_traces()]
    with browser_page(tmp_path / "profile") as (page, requests, errors):
        page.goto((tmp_path / "site" / "samples.html").as_uri() + f"#row={order.index(judged_id)}")
        page.wait_for_selector(f'#sample[data-state=ready][data-id="{judged_id}"]')
        claims = page.eval_on_selector_all(
            "#sample .judgments table.claims tr", "els => els.map(e => [e.getAttribute('data-supported'), "
            "e.querySelector('.claim').textContent])")
        assert claims == [["true", "bar A is 7"], ["false", HOSTILE], ["null", "the colour"]]
        assert page.text_content("#sample .judgments .judge strong") == "j1"
        assert page.eval_on_selector_all("#sample script, #sample img[src=x], #sample textarea", "els => els.length") == 0
        page.goto((tmp_path / "site" / "samples.html").as_uri() + f"#row={order.index(unjudged_id)}")
        page.wait_for_selector(f'#sample[data-state=ready][data-id="{unjudged_id}"]')
        assert page.get_attribute("#sample .judgments .judge", "data-status") == "unjudged"
        assert "unjudged" in page.text_content("#sample .judgments")
        assert page.evaluate("window.__pwned === undefined")
    assert not errors
    assert all(u.startswith("file://") for u in requests)
