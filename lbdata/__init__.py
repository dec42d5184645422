"""lbdata: Look-Back cold-start corpora for multimodal reasoning models.

The public surface is small; everything else lives in submodules.
"""

__version__ = "0.1.0"

from lbdata.errors import LbdataError
from lbdata.records import ImageRef, Problem, TeacherInfo, Trace, Usage, Verdict

__all__ = [
    "ImageRef",
    "LbdataError",
    "Problem",
    "TeacherInfo",
    "Trace",
    "Usage",
    "Verdict",
    "__version__",
]
