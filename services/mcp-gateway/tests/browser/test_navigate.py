"""browser_navigate and browser_navigate_back against the local site, with the URL policy."""

from __future__ import annotations

from typing import Any

import pytest

from tracewheel.gateway.session import BrowserSession

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_navigate_answers_with_page_state(session: BrowserSession, site: Any) -> None:
    result = await session.call_tool("browser_navigate", {"url": site.url + "/"})

    assert not result.is_error, result.text
    assert "### Page state" in result.text
    assert f"- Page URL: {site.url}/" in result.text
    assert "- Page Title: Home" in result.text
    assert "- Page Snapshot:\n```yaml\n" in result.text
    assert 'link "Form" [ref=e' in result.text


async def test_navigate_back_returns_to_previous_page(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/"})
    await session.call_tool("browser_navigate", {"url": site.url + "/popup"})

    result = await session.call_tool("browser_navigate_back", {})

    assert not result.is_error, result.text
    assert "- Page Title: Home" in result.text


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "'file:' is not allowed"),
        ("javascript:alert(1)", "'javascript:' is not allowed"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://localhost:1/", "localhost resolves to"),
    ],
)
async def test_navigate_to_denied_url_is_a_clear_error(session: BrowserSession, url: str, reason: str) -> None:
    result = await session.call_tool("browser_navigate", {"url": url})

    assert result.is_error
    assert f"Navigation to {url} blocked by the gateway's URL policy:" in result.text
    assert reason in result.text


async def test_loopback_port_off_the_allow_list_is_never_reached(session: BrowserSession, site: Any) -> None:
    result = await session.call_tool("browser_navigate", {"url": site.denied_url + "/secret"})

    assert result.is_error
    assert "loopback" in result.text
    assert site.denied_hits == []


async def test_redirect_to_metadata_address_is_blocked(session: BrowserSession, site: Any) -> None:
    result = await session.call_tool("browser_navigate", {"url": site.url + "/redirect-metadata"})

    assert result.is_error
    assert f"Navigation to {site.url}/redirect-metadata blocked by the gateway's URL policy" in result.text
    assert "redirected to http://169.254.169.254/latest/meta-data/" in result.text


async def test_redirect_to_denied_loopback_port_is_blocked(session: BrowserSession, site: Any) -> None:
    result = await session.call_tool("browser_navigate", {"url": site.url + "/redirect-loopback"})

    assert result.is_error
    assert f"redirected to {site.denied_url}/secret" in result.text
    assert site.denied_hits == []


async def test_session_survives_a_blocked_navigation(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/redirect-metadata"})

    result = await session.call_tool("browser_navigate", {"url": site.url + "/"})

    assert not result.is_error, result.text
    assert "- Page Title: Home" in result.text


async def test_denied_subresources_are_blocked_and_listed(session: BrowserSession, site: Any) -> None:
    result = await session.call_tool("browser_navigate", {"url": site.url + "/images"})

    assert not result.is_error, result.text
    assert "### Blocked by the gateway's URL policy" in result.text
    assert "- http://10.255.255.1/pixel.png: 10.255.255.1 is a private address" in result.text
    assert f"- {site.denied_url}/pixel.png: 127.0.0.1 is a loopback address" in result.text
    assert site.denied_hits == []


async def test_unresolvable_host_is_an_error_not_a_policy_block(session: BrowserSession) -> None:
    result = await session.call_tool("browser_navigate", {"url": "http://nonexistent.invalid/"})

    assert result.is_error
    assert (
        "Navigation to http://nonexistent.invalid/ failed: host 'nonexistent.invalid' does not resolve" in result.text
    )
