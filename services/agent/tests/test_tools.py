"""LocalGateway over the gateway's real SessionManager and chromium."""

import json

import pytest

from tracewheel.agent.tools import LocalGateway, SessionLost, parse_arguments


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_tools_calls_errors_and_truncation(gateway: LocalGateway, site_url: str) -> None:
    tools = await gateway.open(["browser_navigate", "browser_snapshot"], result_char_limit=200)
    try:
        assert [t["function"]["name"] for t in await tools.list_tools()] == ["browser_navigate", "browser_snapshot"]
        page = await tools.call_tool("browser_navigate", json.dumps({"url": site_url}))
        assert not page.is_error and page.text.startswith("### Page state")
        assert page.text.endswith("characters ...]") and len(page.text) < 260
        unknown = await tools.call_tool("browser_fly", "{}")
        assert unknown.is_error and "Unknown tool" in unknown.text
        bad = await tools.call_tool("browser_navigate", '{"url": ')
        assert bad.is_error and "not valid JSON" in bad.text
    finally:
        await tools.close()
        await tools.close()  # twice is fine


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_lost_session_raises_and_reopens(gateway: LocalGateway) -> None:
    tools = await gateway.open(["browser_snapshot"])
    try:
        lost_id = tools.session_id
        await gateway.manager.close(lost_id)
        with pytest.raises(SessionLost):
            await tools.call_tool("browser_snapshot", "{}")
        await tools.reopen()
        assert tools.session_id != lost_id
        assert not (await tools.call_tool("browser_snapshot", "{}")).is_error
    finally:
        await tools.close()


def test_parse_arguments_wants_a_json_object() -> None:
    assert parse_arguments('{"a": 1}') == {"a": 1} and parse_arguments("") == {}
    assert "JSON object" in parse_arguments("[1]")
