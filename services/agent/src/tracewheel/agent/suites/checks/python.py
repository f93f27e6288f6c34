"""A `python` check: a team's own function `module:function` for what declarations cannot say."""

from __future__ import annotations

import functools
import inspect
from dataclasses import replace
from typing import Any

from tracewheel.agent.suites.checks.context import CheckContext, CheckResult
from tracewheel.agent.suites.spec import Python, resolve_entry_point


@functools.cache
def _function(entry_point: str) -> Any:
    return resolve_entry_point(entry_point)


def _as_result(value: Any, entry_point: str) -> CheckResult:
    if isinstance(value, CheckResult):
        return value
    if isinstance(value, bool):
        return CheckResult.of(value, f"{entry_point} returned {value}")
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
        return CheckResult.of(value[0], str(value[1]))
    expected = "a bool, (bool, reason) or a CheckResult"
    return CheckResult.error(f"{entry_point} returned {type(value).__name__}; expected {expected}")


async def check_python(spec: Python, context: CheckContext) -> CheckResult:
    """Calls the function with the context (its `params` set to the check's) and awaits it if it is
    async. A function that raises gives an `error` verdict naming the exception."""
    try:
        result = _function(spec.entry_point)(replace(context, params=spec.params))
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # a team's code may raise anything: the run is not judged, not passed
        return CheckResult.error(f"{spec.entry_point} raised {type(exc).__name__}: {exc}")
    return _as_result(result, spec.entry_point)
