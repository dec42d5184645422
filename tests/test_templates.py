"""One Jinja environment per kind of template: prompts and cards verbatim, viewer pages escaped."""

from __future__ import annotations

import jinja2
import pytest

from lbdata.templates import KINDS, environment

HOSTILE = '<script>alert("x")</script> & \'quoted\''


def test_each_kind_is_made_once_per_process():
    for kind in KINDS:
        assert environment(kind) is environment(kind)
    assert len({id(environment(k)) for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize("kind", ["prompts", "cards", "text"])
def test_text_kinds_render_verbatim_and_reject_an_undefined_variable(kind):
    env = environment(kind)
    assert env.from_string("{{ q }}").render(q=HOSTILE) == HOSTILE
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()


def test_whitespace_options_are_those_the_pinned_prompts_were_rendered_with():
    src = "a\n{% if x %}\n  b\n{% endif %}\nc\n"
    assert environment("prompts").from_string(src).render(x=True) == "a\n  b\nc"
    assert environment("cards").from_string(src).render(x=True) == "a\n  b\nc\n"
    assert environment("text").from_string(src).render(x=True) == "a\n\n  b\n\nc"


def test_prompt_and_card_templates_load_by_their_path_under_the_folder():
    problem = environment("prompts").get_template("teacher/_problem.jinja").render(
        question=HOSTILE, choices=None, n_images=1, answer=None, base_trace="")
    assert "image:\n" + HOSTILE in problem
    claims = environment("prompts").get_template("judge/claims.jinja").render(
        question="What is 2+2?", choices=None, n_images=2, backs=["The bar is <b>4</b>."])
    assert "images:\nWhat is 2+2?" in claims and "The bar is <b>4</b>." in claims
    assert environment("cards").get_template("corpus.md.j2").filename.endswith("corpus.md.j2")
    with pytest.raises(jinja2.TemplateNotFound):
        environment("cards").get_template("nope.j2")


def test_html_kind_escapes_every_value():
    out = environment("html").from_string("<p title='{{ t }}'>{{ t }}</p>").render(t=HOSTILE)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "&#34;x&#34;" in out and "&#39;quoted&#39;" in out and "&amp;" in out
    with pytest.raises(jinja2.UndefinedError):
        environment("html").from_string("{{ missing }}").render()


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown template kind"):
        environment("latex")  # type: ignore[arg-type]
