"""Evaluate a model (kept for ``from lbdata.evaluate import …``): the code lives in ``lbdata.eval``.

``evaluate(model_or_client, problems, variant)`` and every public name of the package are re-exported
here unchanged; see ``lbdata.eval`` for the module map.
"""

from __future__ import annotations

from lbdata.eval import *  # noqa: F403
from lbdata.eval import __all__  # noqa: F401
