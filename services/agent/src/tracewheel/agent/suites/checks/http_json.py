"""End-state check over HTTP: GET a URL after the run and match a JSON path in its answer."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tracewheel.agent.suites.checks.answer import json_contains
from tracewheel.agent.suites.checks.context import CheckContext, CheckResult
from tracewheel.agent.suites.spec import HttpJson

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\*|\d+)\]")


def path_values(document: Any, path: str) -> list[Any]:
    """The values at `path` (`a.b[0].c`, `items[*].id`, a leading `$.` allowed; empty: the document).
    A missing key or index gives no value; `[*]` gives one per item."""
    values = [document]
    for key, index in _SEGMENT.findall(path.removeprefix("$").lstrip(".")):
        following: list[Any] = []
        for value in values:
            if key:
                if isinstance(value, dict) and key in value:
                    following.append(value[key])
            elif isinstance(value, list):
                following.extend(value if index == "*" else value[int(index) : int(index) + 1])
        values = following
    return values


def _matches(spec: HttpJson, value: Any) -> bool:
    # equals: contained both ways (deep equality, numbers by value, lists in any order)
    if spec.equals is not None and not (json_contains(value, spec.equals) and json_contains(spec.equals, value)):
        return False
    if spec.subset is not None and not json_contains(value, spec.subset):
        return False
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return spec.pattern is None or re.search(spec.pattern, text) is not None


async def check_http_json(spec: HttpJson, context: CheckContext) -> CheckResult:
    """GETs the URL; passes when a value at the path matches. A URL that does not answer with JSON
    is an error (the check could not look), not a failure."""
    try:
        response = await context.http.get(spec.url, headers=spec.headers)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return CheckResult.error(f"GET {spec.url} failed: {type(exc).__name__}: {exc}")
    values = path_values(document, spec.path)
    where = f"{spec.url} {spec.path or '(document)'}"
    if not values:
        return CheckResult.of(False, f"{where}: no such path")
    if any(_matches(spec, value) for value in values):
        return CheckResult.of(True, f"{where} matches")
    shown = json.dumps(values[0] if len(values) == 1 else values, ensure_ascii=False)
    return CheckResult.of(False, f"{where} is {shown[:160]}, which does not match")
