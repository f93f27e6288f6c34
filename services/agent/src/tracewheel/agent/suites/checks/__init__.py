"""Running a task's checker: one module per kind, combined with `all` / `any`.

`run_check(check, context)` answers a `CheckResult`. Combinations never turn an error into a
pass: `all` is an error when any part is, else failed when any part failed; `any` passes when
some part passed, else is an error when any part is, else failed.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from tracewheel.agent.suites import spec as s
from tracewheel.agent.suites.checks.answer import (
    check_contains,
    check_equals,
    check_json_subset,
    check_number,
    check_regex,
)
from tracewheel.agent.suites.checks.context import CheckContext, CheckResult, InferenceEndpoint, PageState
from tracewheel.agent.suites.checks.http_json import check_http_json
from tracewheel.agent.suites.checks.judge import check_judge
from tracewheel.agent.suites.checks.page import check_page_field, check_page_text, check_page_url
from tracewheel.agent.suites.checks.python import check_python
from tracewheel.core.trace import Verdict

__all__ = ["CheckContext", "CheckResult", "InferenceEndpoint", "PageState", "checks_of", "needs_page", "run_check"]

Runner = Callable[[Any, CheckContext], CheckResult | Awaitable[CheckResult]]
RUNNERS: dict[str, Runner] = {
    "equals": check_equals,
    "contains": check_contains,
    "regex": check_regex,
    "number": check_number,
    "json_subset": check_json_subset,
    "page_url": check_page_url,
    "page_text": check_page_text,
    "page_field": check_page_field,
    "http_json": check_http_json,
    "python": check_python,
    "judge": check_judge,
}
ALL_ORDER = (Verdict.ERROR, Verdict.FAILED, Verdict.PASSED)
ANY_ORDER = (Verdict.PASSED, Verdict.ERROR, Verdict.FAILED)
PAGE_KINDS = frozenset({"page_url", "page_text", "page_field"})


def checks_of(check: s.Check) -> Iterator[s.Check]:
    """The check and every check inside it."""
    yield check
    if isinstance(check, s.AllOf | s.AnyOf):
        for part in check.checks:
            yield from checks_of(part)


def needs_page(check: s.Check | None) -> bool:
    """Whether the checker reads the final page (a snapshot is taken before the session closes)."""
    return check is not None and any(c.kind in PAGE_KINDS for c in checks_of(check))


def combine(kind: str, results: list[CheckResult]) -> CheckResult:
    """`all` or `any` of the parts' results (module docstring); the judgments of every part are kept."""
    judgments = tuple(j for r in results for j in r.judgments)
    reason = "; ".join(r.reason for r in results)
    verdicts = {r.verdict for r in results}
    # the first verdict of the order present among the parts wins
    order = ALL_ORDER if kind == "all" else ANY_ORDER
    verdict = next(v for v in order if v in verdicts)
    score = min(r.score for r in results) if kind == "all" else max(r.score for r in results)
    return CheckResult(verdict, reason, score if verdict != Verdict.ERROR else 0.0, judgments)


async def run_check(check: s.Check, context: CheckContext) -> CheckResult:
    """The checker's verdict on a finished run (its parts run concurrently)."""
    if isinstance(check, s.AllOf | s.AnyOf):
        results = await asyncio.gather(*(run_check(part, context) for part in check.checks))
        return combine(check.kind, list(results))
    result = RUNNERS[check.kind](check, context)
    return await result if inspect.isawaitable(result) else result
