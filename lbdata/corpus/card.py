"""The dataset card (README.md with the Hub YAML header) of a corpus version."""

from __future__ import annotations

from typing import Any

from lbdata.corpus.config import SPLITS


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` rows."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def render_card(manifest: dict[str, Any], repo: str | None = None) -> str:
    """The dataset card (README.md with the Hub YAML header) of a version, from ``cards/corpus.md.j2``.

    ``repo`` (ORG/NAME) is the Hub dataset the card is pushed to; it shows in the loading example.
    """
    import jinja2

    from lbdata.resources import resource_path

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True)
    template = env.from_string(resource_path("cards", "corpus.md.j2").read_text(encoding="utf-8"))
    total = sum(s["rows"] for per in manifest["counts"].values() for s in per.values())
    return template.render(m=manifest, repo=repo, splits=SPLITS, total_rows=total, size_category=size_category(total))
