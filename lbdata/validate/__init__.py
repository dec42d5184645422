"""Trace validation: grammar, ``<back>`` placement, anti-empty-back rules and answer checking.

The same functions are the data filter (``lbdata validate``) and the GRPO rewards, so the two can
never disagree. Reason codes are listed in ``REASONS`` and in the README.
"""

from lbdata.validate.answers import answer_stats, answers_match, is_hedged
from lbdata.validate.config import ValidationConfig
from lbdata.validate.reasons import REASONS
from lbdata.validate.runner import ValidationReport, validate_run
from lbdata.validate.tags import ParsedTrace, Segment, parse_trace
from lbdata.validate.trace import format_ok, validate_trace

__all__ = [
    "REASONS",
    "ParsedTrace",
    "Segment",
    "ValidationConfig",
    "ValidationReport",
    "answer_stats",
    "answers_match",
    "format_ok",
    "is_hedged",
    "parse_trace",
    "validate_run",
    "validate_trace",
]
