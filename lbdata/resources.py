"""Find the project's data folders (prompts/, cards/, training/, schemas/) and the viewer's templates.

In a checkout the data folders sit next to the package; in an installed wheel they are packed under
``lbdata/_data/``. ``resource_dir`` hides the difference. The viewer's HTML templates are package data
(``lbdata/view/templates/``), in the wheel as in the checkout: ``html_template_dir``.
"""

from __future__ import annotations

from pathlib import Path

from lbdata.errors import LbdataError

KINDS = ("prompts", "cards", "training", "schemas")
_PKG = Path(__file__).resolve().parent


def resource_dir(kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown resource kind {kind!r}; expected one of {KINDS}")
    for candidate in (_PKG / "_data" / kind, _PKG.parent / kind):
        if candidate.is_dir():
            return candidate
    raise LbdataError(
        f"lbdata's {kind}/ folder is missing from this installation; reinstall lbdata (pip install -e .)"
    )


def html_template_dir() -> Path:
    """The viewer's page templates (``lbdata/view/templates/*.html``), shipped inside the package."""
    return _PKG / "view" / "templates"


def resource_path(kind: str, name: str) -> Path:
    path = resource_dir(kind) / name
    if not path.exists():
        available = sorted(p.relative_to(resource_dir(kind)).as_posix() for p in resource_dir(kind).rglob("*") if p.is_file())
        raise LbdataError(f"{kind}/{name} not found; available: {', '.join(available) or 'none'}")
    return path


def _yaml_problem(exc: Exception) -> str:
    """What the YAML parser refused, and where: ``line 2, column 1: expected the node content …``."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None and exc.problem:
        return f"line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())


def read_yaml_mapping(path: str | Path, *, what: str, hint: str, unreadable_fix: str = "check the path") -> dict:
    """Read a YAML file that must hold a mapping (a recipe, a price table, a validation config).

    Every failure is a ``ConfigError`` of one line naming ``what`` and the path; ``hint`` says what the
    mapping should look like, ``unreadable_fix`` what to do when the file cannot be read.
    """
    import yaml

    from lbdata.errors import ConfigError

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {str(p)!r} ({exc.strerror or exc}); {unreadable_fix}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {p} is not UTF-8 text; {unreadable_fix}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {p} is not valid YAML ({_yaml_problem(exc)}); fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {p} must be a mapping: {hint}")
    return data
