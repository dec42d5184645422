"""Teachers: who writes traces. A registry maps names to classes; third parties add theirs through
the entry-point group ``lbdata.teachers`` (``name = "package.module:Class"``).

Built-in names: ``scene`` (offline, writes from the synthetic source's scene facts), ``gpt-4o`` and
``openai:<model>`` (the OpenAI API, or any OpenAI-compatible server with ``base_url``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from lbdata.errors import UsageError
from lbdata.teachers.base import Teacher, TeacherResponse, TraceRequest

BUILTIN: dict[str, str] = {
    "scene": "lbdata.teachers.scene:SceneTeacher",
    "openai": "lbdata.teachers.openai:OpenAITeacher",
}


def _registry() -> dict[str, str]:
    reg = dict(BUILTIN)
    for ep in entry_points(group="lbdata.teachers"):
        reg.setdefault(ep.name, ep.value)
    return reg


def teacher_names() -> list[str]:
    return sorted([*_registry(), "gpt-4o", "openai:<model>"])


def load_teacher(spec: str, **options: Any) -> Teacher:
    """Build the teacher named by ``spec`` (``scene``, ``gpt-4o``, ``openai:<model>`` or a plug-in name)."""
    name, _, model = spec.partition(":")
    if spec.startswith("gpt-") or spec.startswith("o1") or spec.startswith("o3") or spec.startswith("o4"):
        name, model = "openai", spec
    reg = _registry()
    if name not in reg:
        raise UsageError(f"unknown teacher {spec!r}; valid teachers: {', '.join(teacher_names())}")
    module, _, attr = reg[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if model:
        options["model"] = model
    return cls(**options)


__all__ = ["Teacher", "TeacherResponse", "TraceRequest", "load_teacher", "teacher_names"]
