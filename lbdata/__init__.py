"""lbdata: Look-Back cold-start corpora for multimodal reasoning models.

The public surface is the dozen names below, one per step of the data flow; everything else lives in
submodules. Heavy modules (datasets, torch) load only when their name is first used, so
``import lbdata`` stays fast and works without the ``train`` extra.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from lbdata.errors import LbdataError
from lbdata.records import ImageRef, Problem, TeacherInfo, Trace, Usage, Verdict

# name -> module that defines it (imported on first use). Functions named like their module
# (lbdata.generate.generate, lbdata.evaluate.evaluate) are not re-exported: the name would shadow
# the submodule.
_LAZY: dict[str, str] = {
    "load_source": "lbdata.sources",
    "load_teacher": "lbdata.teachers",
    "GenerateConfig": "lbdata.generate",
    "parse_trace": "lbdata.validate",
    "answers_match": "lbdata.validate",
    "validate_trace": "lbdata.validate",
    "ValidationConfig": "lbdata.validate",
    "validate_run": "lbdata.validate",
    "build_corpus": "lbdata.corpus",
    "load_corpus": "lbdata.corpus",
    "export_corpus": "lbdata.export",
    "push_corpus": "lbdata.hub",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lbdata' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "ImageRef",
    "LbdataError",
    "Problem",
    "TeacherInfo",
    "Trace",
    "Usage",
    "Verdict",
    "__version__",
    *_LAZY,
]
