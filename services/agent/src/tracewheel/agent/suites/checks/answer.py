"""Declarative checks of the final answer: equals, contains, regex, number, json_subset."""

from __future__ import annotations

import json
import re
from typing import Any

from tracewheel.agent.suites.checks.context import CheckContext, CheckResult
from tracewheel.agent.suites.spec import Contains, Equals, JsonSubset, Number, Regex

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _normal(text: str, case_sensitive: bool) -> str:
    text = " ".join(text.split())
    return text if case_sensitive else text.casefold()


def _shown(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def check_equals(spec: Equals, context: CheckContext) -> CheckResult:
    """The answer equals the value (whitespace runs and, by default, case ignored)."""
    same = _normal(context.final_answer, spec.case_sensitive) == _normal(spec.value, spec.case_sensitive)
    if same:
        return CheckResult.of(True, f"answer equals {spec.value!r}")
    return CheckResult.of(False, f"expected the answer {spec.value!r}, got {_shown(context.final_answer)}")


def check_contains(spec: Contains, context: CheckContext) -> CheckResult:
    """The answer contains the value."""
    found = _normal(spec.value, spec.case_sensitive) in _normal(context.final_answer, spec.case_sensitive)
    if found:
        return CheckResult.of(True, f"answer contains {spec.value!r}")
    return CheckResult.of(False, f"expected {spec.value!r} in the answer, got {_shown(context.final_answer)}")


def check_regex(spec: Regex, context: CheckContext) -> CheckResult:
    """The answer matches the pattern somewhere."""
    flags = re.IGNORECASE if spec.ignore_case else 0
    if re.search(spec.pattern, context.final_answer, flags):
        return CheckResult.of(True, f"answer matches /{spec.pattern}/")
    return CheckResult.of(False, f"expected the answer to match /{spec.pattern}/, got {_shown(context.final_answer)}")


def numbers_in(text: str) -> list[float]:
    """Every number written in `text` (`1,234.5` reads as 1234.5)."""
    return [float(n.replace(",", "")) for n in _NUMBER.findall(text)]


def check_number(spec: Number, context: CheckContext) -> CheckResult:
    """Some number in the answer is within the tolerance of the value."""
    numbers = numbers_in(context.final_answer)
    close = [n for n in numbers if abs(n - spec.value) <= spec.tolerance]
    within = f"{spec.value:g} ± {spec.tolerance:g}" if spec.tolerance else f"{spec.value:g}"
    if close:
        return CheckResult.of(True, f"answer states {close[0]:g} ({within})")
    seen = ", ".join(f"{n:g}" for n in numbers[:5]) or "no number"
    return CheckResult.of(False, f"expected {within} in the answer, found {seen}")


def json_contains(actual: Any, expected: Any) -> bool:
    """Whether `expected` is a subset of `actual`: objects by key (recursively), lists by every expected
    item matching some actual item, numbers by value (1 == 1.0), anything else by equality."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and json_contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(json_contains(a, e) for a in actual) for e in expected)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return bool(actual == expected)


def json_in_answer(answer: str) -> Any:
    """The JSON the answer holds: the whole of it, a fenced ```json block, or its outermost {...} or [...].

    Raises:
        ValueError: no JSON found.
    """
    candidates = [answer, *_FENCE.findall(answer)]
    for opening, closing in ("{}", "[]"):
        start, end = answer.find(opening), answer.rfind(closing)
        if 0 <= start < end:
            candidates.append(answer[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise ValueError("the answer holds no JSON")


def check_json_subset(spec: JsonSubset, context: CheckContext) -> CheckResult:
    """The answer's JSON contains the value."""
    try:
        answer = json_in_answer(context.final_answer)
    except ValueError as exc:
        return CheckResult.of(False, f"{exc}: {_shown(context.final_answer)}")
    if json_contains(answer, spec.value):
        return CheckResult.of(True, "the answer's JSON contains the expected values")
    expected = json.dumps(spec.value, ensure_ascii=False)
    return CheckResult.of(False, f"the answer's JSON does not contain {expected[:120]}")
