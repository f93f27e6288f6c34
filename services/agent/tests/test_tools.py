"""LocalGateway over the gateway's real SessionManager and chromium."""

import asyncio
import json

import pytest

from tracewheel.agent.tools import LocalGateway, SessionLost, open_when_free, parse_arguments
from tracewheel.core.errors import ResourceExhausted


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


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_a_full_gateway_makes_the_next_session_wait_for_a_free_one(gateway: LocalGateway) -> None:
    manager = gateway.manager
    free = manager.config.max_sessions - len(manager.sessions())
    held = [await gateway.open(["browser_snapshot"]) for _ in range(free)]
    try:
        with pytest.raises(ResourceExhausted, match="browser sessions are in use"):
            await gateway.open(["browser_snapshot"])  # the fixture's gateway does not wait
        late = asyncio.create_task(LocalGateway(manager, session_wait_s=30).open(["browser_snapshot"]))
        await asyncio.sleep(0.6)  # refused twice meanwhile
        assert not late.done()
        await held.pop().close()
        held.append(await asyncio.wait_for(late, 10))
        assert not (await held[-1].call_tool("browser_snapshot", "{}")).is_error
    finally:
        for tools in held:
            await tools.close()


async def test_open_when_free_gives_up_after_its_wait_and_says_how_long() -> None:
    tries = 0

    async def full() -> None:
        nonlocal tries
        tries += 1
        raise ResourceExhausted("all 1 browser sessions are in use")

    with pytest.raises(ResourceExhausted, match=r"in use \(waited 0\.8 s for a free session\)"):
        await open_when_free(full, wait_s=1.0)
    assert tries == 3  # at 0, 0.25 and 0.75 s
