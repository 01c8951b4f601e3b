"""Where in a flow module a failure happened: the file and line a flow's author can open."""

from __future__ import annotations

import os
import traceback

from ivrbot.flow.steps import Step


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def failure_site(exc: BaseException, source: str) -> str:
    """``file:line`` of the innermost frame of ``exc``'s traceback in the flow module
    ``source`` ('' when the failure did not pass through it)."""
    if not source:
        return ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if _same_file(frame.filename, source):
            return f"{source}:{frame.lineno}"
    return ""


def step_source(step: Step) -> str:
    """``file:line`` where a Python step is defined ('' for declarative steps)."""
    return step.source()
