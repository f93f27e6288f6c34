"""End-state checks of the page a run ended on: page_url, page_text, page_field.

The page is a `browser_snapshot` taken after the run, before its session closes: the URL line
and the ARIA snapshot, in which a field's value follows its line (`- textbox "Email" [ref=e5]:
"kim@example.com"`), a choice is the `[selected]` option under it, a box `[checked]`.
"""

from __future__ import annotations

import json
import re

from tracewheel.agent.suites.checks.context import CheckContext, CheckResult, PageState
from tracewheel.agent.suites.spec import PageField, PageText, PageUrl

NO_PAGE = "no final page to check (no browser page was open when the run ended)"
_LINE = re.compile(
    r'^(?P<indent>\s*)- (?P<role>[a-z]+) (?P<name>"(?:[^"\\]|\\.)*")(?P<attrs>[^:]*?)(?::\s*(?P<value>.*))?$'
)
_OPTION = re.compile(r'^\s*- option (?P<name>"(?:[^"\\]|\\.)*")(?P<attrs>.*)$')


def check_page_url(spec: PageUrl, context: CheckContext) -> CheckResult:
    """The final page's URL matches the pattern."""
    if context.page is None:
        return CheckResult.of(False, NO_PAGE)
    if re.search(spec.pattern, context.page.url):
        return CheckResult.of(True, f"final page {context.page.url} matches /{spec.pattern}/")
    return CheckResult.of(False, f"final page {context.page.url or '(no URL)'} does not match /{spec.pattern}/")


def check_page_text(spec: PageText, context: CheckContext) -> CheckResult:
    """The final page's text contains the string (case ignored) or matches the pattern."""
    if context.page is None:
        return CheckResult.of(False, NO_PAGE)
    text = context.page.text
    if spec.contains is not None and spec.contains.casefold() not in text.casefold():
        return CheckResult.of(False, f"the final page does not show {spec.contains!r}")
    if spec.pattern is not None and not re.search(spec.pattern, text):
        return CheckResult.of(False, f"the final page does not match /{spec.pattern}/")
    return CheckResult.of(True, "the final page shows the expected text")


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith('"'):
        try:
            return str(json.loads(value))
        except json.JSONDecodeError:
            return value.strip('"')
    return value


def field_value(page: PageState, role: str, name: str) -> str | None:
    """The value of the first element with this role and accessible name, or None when there is none."""
    lines = page.text.splitlines()
    for index, line in enumerate(lines):
        match = _LINE.match(line)
        if match is None or match.group("role") != role or _unquote(match.group("name")) != name:
            continue
        if match.group("value"):
            return _unquote(match.group("value"))
        if "[checked]" in match.group("attrs"):
            return "checked"
        depth = len(match.group("indent"))
        for child in lines[index + 1 :]:
            if len(child) - len(child.lstrip()) <= depth:
                break
            option = _OPTION.match(child)
            if option is not None and "[selected]" in option.group("attrs"):
                return _unquote(option.group("name"))
        return ""
    return None


def check_page_field(spec: PageField, context: CheckContext) -> CheckResult:
    """An element's value on the final page equals (or contains) the expected text."""
    if context.page is None:
        return CheckResult.of(False, NO_PAGE)
    value = field_value(context.page, spec.role, spec.name)
    label = f'{spec.role} "{spec.name}"'
    if value is None:
        return CheckResult.of(False, f"no {label} on the final page")
    if spec.equals is not None and value.strip() != spec.equals.strip():
        return CheckResult.of(False, f"{label} holds {value!r}, expected {spec.equals!r}")
    if spec.contains is not None and spec.contains.casefold() not in value.casefold():
        return CheckResult.of(False, f"{label} holds {value!r}, expected it to contain {spec.contains!r}")
    return CheckResult.of(True, f"{label} holds {value!r}")
