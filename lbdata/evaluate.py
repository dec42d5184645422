"""Evaluate a model: a re-export kept for users' ``from lbdata.evaluate import …``; the code lives in ``lbdata.eval``.

Every public name of ``lbdata.eval`` (``evaluate``, ``EvalConfig``, ``LocalModel``, ``ServedModel``,
``compare_reports`` …) is re-exported here unchanged; see ``lbdata.eval`` for the module map. Code inside
lbdata, its tests and benchmarks import from ``lbdata.eval``.
"""

from __future__ import annotations

from lbdata.eval import *  # noqa: F403
from lbdata.eval import __all__  # noqa: F401
