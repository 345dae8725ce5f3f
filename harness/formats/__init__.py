"""Parallel formats as plug-ins: registry key = `format=` value = `--format` value.

    >>> get_format("threadweaver").fork_trigger
    '</Outlines>'

A format module defines one `ParallelFormat` subclass (harness/formats/base.py); add it to FORMATS.
"""

from __future__ import annotations

import difflib

from harness.errors import InputError
from harness.formats.base import FIDELITIES, ForkPlan, ParallelFormat, Violation
from harness.formats.multiverse import MultiverseFormat
from harness.formats.npr import NPRFormat
from harness.formats.parallel_r1 import ParallelR1Format
from harness.formats.threadweaver import ThreadWeaverFormat

FORMATS: dict[str, ParallelFormat] = {
    f.name: f for f in (ThreadWeaverFormat(), ParallelR1Format(), NPRFormat(), MultiverseFormat())
}
DEFAULT_FORMAT = "threadweaver"


def get_format(name: str | ParallelFormat) -> ParallelFormat:
    """The format registered as `name` (a format object passes through); InputError with a suggestion."""
    if isinstance(name, ParallelFormat):
        return name
    if name not in FORMATS:
        close = difflib.get_close_matches(str(name), FORMATS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(FORMATS)})"
        raise InputError(f"unknown format '{name}'{hint}")
    return FORMATS[name]


__all__ = ["DEFAULT_FORMAT", "FIDELITIES", "FORMATS", "ForkPlan", "ParallelFormat", "Violation", "get_format"]
