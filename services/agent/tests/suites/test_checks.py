"""Each checker kind on a finished run, and how all/any combine verdicts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tracewheel.agent.suites import CheckContext, PageState, run_check
from tracewheel.agent.suites.checks.page import field_value
from tracewheel.agent.suites.spec import Check
from tracewheel.agent.tasks import Task
from tracewheel.core.trace import Verdict

CHECK = TypeAdapter(Check)
TASK = Task("s", "t1", "", "What costs what?", {})
PAGE = PageState.from_snapshot(
    "### Page\n- Page URL: http://127.0.0.1:8500/orders/7\n- Page Title: Order 7\n- Page Snapshot:\n```yaml\n"
    '- heading "Order 7 received"\n- form "Order":\n  - spinbutton "Quantity" [ref=e28]: "3"\n'
    '  - textbox "Email" [ref=e29]: kim@example.com\n  - combobox "Delivery" [ref=e30]:\n'
    '    - option "Standard"\n    - option "Express" [selected]\n  - checkbox "Gift wrap" [checked] [ref=e31]\n```'
)


def _state(request: object) -> JSONResponse:
    return JSONResponse({"orders": [{"sku": "A1", "quantity": 2}, {"sku": "B2", "quantity": 3, "tags": ["x", "y"]}]})


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Route("/api/state", _state), Route("/text", lambda r: JSONResponse("plain"))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://site") as client:
        yield client


async def _verdict(check: dict, http: httpx.AsyncClient, answer: str = "", page: PageState | None = None) -> str:
    context = CheckContext(task=TASK, final_answer=answer, http=http, page=page)
    return (await run_check(CHECK.validate_python(check), context)).verdict.value


async def test_answer_checks(http: httpx.AsyncClient) -> None:
    assert await _verdict({"kind": "equals", "value": "Blue  Yo-Yo"}, http, " blue yo-yo ") == "passed"
    assert await _verdict({"kind": "equals", "value": "Blue", "case_sensitive": True}, http, "blue") == "failed"
    assert await _verdict({"kind": "contains", "value": "yo-yo"}, http, "The Blue Yo-Yo costs $7") == "passed"
    assert await _verdict({"kind": "regex", "pattern": r"\$7\.49\b"}, http, "It is $7.49.") == "passed"
    assert await _verdict({"kind": "regex", "pattern": "^no$", "ignore_case": True}, http, "NO") == "passed"
    assert await _verdict({"kind": "number", "value": 1234.5}, http, "about 1,234.50 units") == "passed"
    assert await _verdict({"kind": "number", "value": 10, "tolerance": 0.5}, http, "9.6 or 12") == "passed"
    assert await _verdict({"kind": "number", "value": 10, "tolerance": 0.1}, http, "9.6 or 12") == "failed"
    subset = {"kind": "json_subset", "value": {"sku": "A1", "items": [2]}}
    assert await _verdict(subset, http, 'Done: ```json\n{"sku": "A1", "items": [1, 2], "n": 3}\n```') == "passed"
    assert await _verdict(subset, http, '{"sku": "A1", "items": [3]}') == "failed"
    assert await _verdict(subset, http, "no json here") == "failed"


def test_a_fields_value_is_read_from_the_snapshot() -> None:
    assert field_value(PAGE, "spinbutton", "Quantity") == "3"
    assert field_value(PAGE, "textbox", "Email") == "kim@example.com"
    assert field_value(PAGE, "combobox", "Delivery") == "Express"
    assert field_value(PAGE, "checkbox", "Gift wrap") == "checked"
    assert field_value(PAGE, "textbox", "Name") is None


async def test_end_state_checks_read_the_final_page(http: httpx.AsyncClient) -> None:
    assert await _verdict({"kind": "page_url", "pattern": r"/orders/\d+$"}, http, page=PAGE) == "passed"
    assert await _verdict({"kind": "page_url", "pattern": "/cart"}, http, page=PAGE) == "failed"
    assert await _verdict({"kind": "page_url", "pattern": "/orders"}, http) == "failed"  # no page
    assert await _verdict({"kind": "page_text", "contains": "order 7 RECEIVED"}, http, page=PAGE) == "passed"
    assert await _verdict({"kind": "page_text", "pattern": "Order [0-9]+ shipped"}, http, page=PAGE) == "failed"
    field = {"kind": "page_field", "role": "combobox", "name": "Delivery", "equals": "Express"}
    assert await _verdict(field, http, page=PAGE) == "passed"
    assert await _verdict({**field, "equals": "Standard"}, http, page=PAGE) == "failed"


async def test_http_json_matches_a_path(http: httpx.AsyncClient) -> None:
    url = "http://site/api/state"
    check = {"kind": "http_json", "url": url}
    assert await _verdict({**check, "path": "orders[1].quantity", "equals": 3}, http) == "passed"
    assert await _verdict({**check, "path": "orders[*].sku", "equals": "B2"}, http) == "passed"
    assert await _verdict({**check, "path": "$.orders", "subset": [{"sku": "B2", "tags": ["y"]}]}, http) == "passed"
    assert await _verdict({**check, "path": "orders[0].sku", "pattern": "^A"}, http) == "passed"
    assert await _verdict({**check, "path": "orders[0].quantity", "equals": 3}, http) == "failed"
    assert await _verdict({**check, "path": "orders[5]"}, http) == "failed"  # no such path
    assert await _verdict({**check, "path": "orders[1].tags"}, http) == "passed"  # exists
    assert await _verdict({**check, "url": "http://site/missing"}, http) == "error"  # could not look


async def test_python_entry_points(http: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "team_checks.py").write_text(
        "from tracewheel.agent.suites import CheckResult\n"
        "def is_short(context):\n    return len(context.final_answer) <= context.params['max']\n"
        "async def with_reason(context):\n    return (context.final_answer == 'ok', 'said ' + context.final_answer)\n"
        "def boom(context):\n    raise RuntimeError('bad day')\n"
        "def odd(context):\n    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    check = {"kind": "python", "params": {"max": 3}}
    assert await _verdict({**check, "entry_point": "team_checks:is_short"}, http, "abc") == "passed"
    assert await _verdict({**check, "entry_point": "team_checks:is_short"}, http, "abcd") == "failed"
    assert await _verdict({**check, "entry_point": "team_checks:with_reason"}, http, "ok") == "passed"
    assert await _verdict({**check, "entry_point": "team_checks:boom"}, http) == "error"
    assert await _verdict({**check, "entry_point": "team_checks:odd"}, http) == "error"


async def test_all_and_any_never_turn_an_error_into_a_pass(http: httpx.AsyncClient) -> None:
    passes, fails = {"kind": "contains", "value": "a"}, {"kind": "contains", "value": "zzz"}
    errs = {"kind": "http_json", "url": "http://site/missing"}
    assert await _verdict({"kind": "all", "checks": [passes, passes]}, http, "a") == "passed"
    assert await _verdict({"kind": "all", "checks": [passes, fails]}, http, "a") == "failed"
    assert await _verdict({"kind": "all", "checks": [fails, errs]}, http, "a") == "error"
    assert await _verdict({"kind": "any", "checks": [fails, passes]}, http, "a") == "passed"
    assert await _verdict({"kind": "any", "checks": [fails, errs]}, http, "a") == "error"
    assert await _verdict({"kind": "any", "checks": [fails, fails]}, http, "a") == "failed"
    nested = {"kind": "any", "checks": [fails, {"kind": "all", "checks": [passes, errs]}]}
    context = CheckContext(task=TASK, final_answer="a", http=http)
    result = await run_check(CHECK.validate_python(nested), context)
    assert result.verdict == Verdict.ERROR and result.score == 0.0 and "GET http://site/missing" in result.reason
