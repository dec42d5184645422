"""Command-line options derived from the settings models, and the option aliases the commands share.

A setting's default, bound and help text live once, in its pydantic ``Field``. ``settings_options`` turns
the fields a command takes into Typer options (default, ``[x>=1]`` range and help from the field) and hands
the command a ``Settings``: what the user typed, which ``Settings.build`` validates into the model. A value
the model refuses becomes one ``UsageError`` line naming the flag: ``--rpm: must be greater than 0 (got 0)``.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import annotated_types
import typer
from pydantic import BaseModel, ValidationError

from lbdata.errors import LbdataError, UsageError, error_reason

# ---------------------------------------------------------------------------- shared option aliases
# A flag is spelled and documented the same in every command.
HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="lbdata home (default: $LBDATA_HOME or ./lbdata-work)", show_default=False),
]
RunArg = Annotated[str, typer.Argument(help="run name under the home (a unique prefix will do), or a run directory")]
ProgressOpt = Annotated[bool, typer.Option(help="show a progress bar on stderr")]
ApiKeyOpt = Annotated[
    str | None, typer.Option(help="API key (default: $OPENAI_API_KEY); never stored", show_default=False)
]


def int64(value: int | None) -> int | None:
    """Option callback: an integer the libraries below can hold (SQLite, seeds, slices), else one line naming the flag."""
    if value is not None and not -2**63 <= value < 2**63:
        raise typer.BadParameter(f"must be between {-2**63:,} and {2**63 - 1:,} (got {value})")
    return value


def out(text: str = "") -> None:
    """Print a result line (or lines) on stdout."""
    typer.echo(text)


# ---------------------------------------------------------------------------- options from a model
@dataclass(frozen=True)
class Flag:
    """How one field of a settings model appears on the command line (everything else comes from the field)."""

    field: str
    decls: tuple[str, ...] = ()  # option names (default: --field-name, or --x/--no-x for a bool)
    type: Any = None  # the option's type where it differs from the field's (str for a comma list, Path for a path)
    param: str | None = None  # the command's parameter name (default: the field's); it names the flag when no decls
    metavar: str | None = None
    to_model: Callable[[Any], Any] | None = None  # what the user typed -> the field's value
    to_cli: Callable[[Any], Any] | None = None  # the field's default -> the option's default

    @property
    def name(self) -> str:
        return self.param or self.field

    @property
    def flag(self) -> str:
        """The option as a user types it (``--rpm``)."""
        return next((d for d in self.decls if d.startswith("--")), "--" + self.name.replace("_", "-"))


def _bounds(model: type[BaseModel], field: str) -> dict[str, Any]:
    """The field's numeric bounds as ``ge``/``gt``/``le``/``lt``."""
    out: dict[str, Any] = {}
    for meta in model.model_fields[field].metadata:
        for key in ("ge", "gt", "le", "lt"):
            value = getattr(meta, key, None) if isinstance(meta, annotated_types.BaseMetadata) else None
            if value is not None:
                out[key] = value
    return out


def describe_range(bounds: dict[str, Any]) -> str | None:
    """``x>0``, ``0.0<=x<1.0``… in the notation Typer uses for closed ranges."""
    lower = next(((bounds[k], op) for k, op in (("ge", "="), ("gt", "")) if k in bounds), None)
    upper = next(((bounds[k], op) for k, op in (("le", "="), ("lt", "")) if k in bounds), None)
    if lower and upper:
        return f"{lower[0]}<{lower[1]}x<{upper[1]}{upper[0]}"
    if lower:
        return f"x>{lower[1]}{lower[0]}"
    return f"x<{upper[1]}{upper[0]}" if upper else None


def cli_help(model: type[BaseModel], flag: Flag) -> str:
    """The field's description as the option's help: the model's words, less what reads well only in Python.

    ``(None: all)`` tells a caller what None means; on the command line None is an option not given, so it
    reads ``(when not given: all)``, and it goes where the option has a default of its own (None cannot be
    typed). A parenthesis naming the option itself (``(--image-root)``) goes too.
    """
    info = model.model_fields[flag.field]
    default = info.get_default(call_default_factory=True)
    shown = flag.to_cli(default) if flag.to_cli else default
    text = (info.description or "").replace(f" ({flag.flag})", "")
    return re.sub(r" \(None: ([^)]*)\)", "" if shown is not None else r" (when not given: \1)", text)


def _parameter(model: type[BaseModel], flag: Flag) -> inspect.Parameter:
    info = model.model_fields[flag.field]
    default = info.get_default(call_default_factory=True)
    bounds = _bounds(model, flag.field)
    help_text = cli_help(model, flag)
    kwargs: dict[str, Any] = {}
    if bounds and not ({"gt", "lt"} & bounds.keys()):
        kwargs = {"min": bounds.get("ge"), "max": bounds.get("le")}  # Typer checks and shows closed ranges itself
    elif bounds:
        help_text += f" \\[{describe_range(bounds)}]"  # an open bound: shown here, checked by the model
    option = typer.Option(*flag.decls, help=help_text, metavar=flag.metavar, **kwargs)
    return inspect.Parameter(
        flag.name, inspect.Parameter.KEYWORD_ONLY, default=flag.to_cli(default) if flag.to_cli else default,
        annotation=Annotated[flag.type or info.annotation, option],
    )


_INT64 = 2**63  # the widest integer SQLite, seeds and slices take: a larger one is refused as typed


class Settings:
    """What the user typed for a command's model-derived options; ``build`` makes (and checks) the model."""

    def __init__(self, model: type[BaseModel], flags: tuple[Flag, ...], values: dict[str, Any]):
        self.model, self.flags, self.values = model, flags, values

    def build(self, **extra: Any) -> Any:
        """The model from the typed values and ``extra`` fields; a refused value is one line naming its flag."""
        fields: dict[str, Any] = {}
        for flag in self.flags:
            value = self.values[flag.name]
            if value is None:  # not given: the model's default
                continue
            if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
                raise UsageError(f"{flag.flag}: must be between {-_INT64:,} and {_INT64 - 1:,} (got {value})")
            if isinstance(value, float) and not math.isfinite(value):  # config.json and requests are JSON
                raise UsageError(f"{flag.flag}: must be a finite number (got {value:g})")
            if flag.to_model is not None:
                try:
                    value = flag.to_model(value)
                except (LbdataError, ValueError) as exc:
                    raise UsageError(f"{flag.flag}: {exc}") from None
            fields[flag.field] = value
        try:
            return self.model(**fields, **extra)
        except ValidationError as exc:
            raise UsageError(settings_error(exc, {f.field: f.flag for f in self.flags})) from None


def settings_options(model: type[BaseModel], *flags: Flag | str) -> Callable[[Callable], Callable]:
    """Give the decorated command one option per field in ``flags``, in place of its ``settings`` parameter, which
    receives what the user typed as a ``Settings``."""
    specs = tuple(Flag(f) if isinstance(f, str) else f for f in flags)

    def decorate(func: Callable) -> Callable:
        params = []
        for name, p in inspect.signature(func, eval_str=True).parameters.items():  # the options go where `settings` is
            if name == "settings":
                params += [_parameter(model, flag) for flag in specs]
            else:
                params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            values = {flag.name: kwargs.pop(flag.name) for flag in specs}
            return func(settings=Settings(model, specs, values), **kwargs)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {}  # the signature carries the (resolved) annotations
        command.settings_model, command.settings_flags = model, specs  # type: ignore[attr-defined]
        return command

    return decorate


# ---------------------------------------------------------------------------- one-line errors
def settings_error(exc: ValidationError, flags: dict[str, str] | None = None) -> str:
    """A settings model's validation error as one line naming the flag: ``--rpm: must be greater than 0 (got 0)``."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    flag = (flags or {}).get(field) or ("--" + field.replace("_", "-") if field else "a setting")
    return f"{flag}: {error_reason(error)}"
