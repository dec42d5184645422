"""The Jinja environments of lbdata, one per kind of template, each made once per process.

- ``prompts`` — teacher and judge prompts under ``prompts/`` (``teacher/semantic_back.write.jinja``,
  ``judge/claims.jinja``): no escaping, an undefined variable is an error, block tags leave no blank
  lines, no trailing newline kept;
- ``cards`` — dataset and model cards under ``cards/`` (``corpus.md.j2``): as ``prompts`` but the
  card keeps its final newline;
- ``text`` — string templates from configuration (an evaluation preset's ``question_template``): no
  loader, no escaping, undefined is an error, Jinja's default whitespace;
- ``html`` — the viewer's pages under ``lbdata/view/templates/``: every value is HTML-escaped unless a
  template marks it ``|safe``; undefined is an error; block tags leave no blank lines.

The options of the text kinds are part of every rendered prompt, and so of every request hash: change
them only with a new prompt version.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import jinja2

from lbdata.resources import html_template_dir, resource_dir

Kind = Literal["prompts", "cards", "text", "html"]
KINDS: tuple[Kind, ...] = ("prompts", "cards", "text", "html")


@cache
def environment(kind: Kind) -> jinja2.Environment:
    """The shared environment for ``kind`` (see the module docstring)."""
    if kind == "prompts":
        return _plain(jinja2.FileSystemLoader(str(resource_dir("prompts"))), trim=True, keep_newline=False)
    if kind == "cards":
        return _plain(jinja2.FileSystemLoader(str(resource_dir("cards"))), trim=True, keep_newline=True)
    if kind == "text":
        return _plain(None, trim=False, keep_newline=False)
    if kind == "html":
        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(html_template_dir())),
            undefined=jinja2.StrictUndefined,
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
    raise ValueError(f"unknown template kind {kind!r}; expected one of {KINDS}")


def _plain(loader: jinja2.BaseLoader | None, *, trim: bool, keep_newline: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=trim,
        lstrip_blocks=trim,
        keep_trailing_newline=keep_newline,
        auto_reload=False,
    )


__all__ = ["KINDS", "environment"]
