"""Fixtures: a local test site, a loopback server the policy must keep the browser away from,
and one chromium (a SessionManager) shared by the whole test session.

The site lives on 127.0.0.1, a loopback address the default policy denies, so the test policy
allow-lists exactly its port (as production allow-lists the task site on 8400).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio

from tracewheel.gateway.aggregate import ServerSpec
from tracewheel.gateway.browser.base import PLAYWRIGHT_MCP_VERSION
from tracewheel.gateway.browser_options import BrowserConfig
from tracewheel.gateway.session import BrowserSession, SessionManager


def _page(title: str, body: str) -> str:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"


_LINKS = [
    ("/form", "Form"),
    ("/select", "Select"),
    ("/events", "Events"),
    ("/cookie?visitor=anonymous", "Cookie"),
    ("/redirect-metadata", "Metadata redirect"),
    ("/redirect-loopback", "Loopback redirect"),
    ("/images", "Images"),
]


def _pages(denied: str) -> dict[str, str]:
    items = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in _LINKS)
    return {
        "/": _page(
            "Home",
            f"<h1>Test site</h1><ul>{items}</ul>"
            '<a href="/popup" target="_blank">Open popup</a> '
            f'<a href="{denied}/secret" target="_blank">Open denied popup</a>',
        ),
        "/popup": _page("Popup page", "<h1>Popup</h1><p>Opened in a new tab</p>"),
        "/form": _page(
            "Form",
            '<form action="/submitted" method="get">'
            '<input name="name" aria-label="Name"> '
            '<input type="checkbox" name="subscribe" value="yes" aria-label="Subscribe"> '
            '<select name="size" aria-label="Size"><option value="s">Small</option><option value="l">Large</option>'
            "</select> "
            '<input name="query" aria-label="Query"> <button type="submit">Send</button></form>',
        ),
        "/select": _page(
            "Select",
            '<select aria-label="Color" onchange="document.getElementById(\'out\').textContent = '
            "'Selected: ' + this.value\">"
            '<option value="red">Red</option><option value="green">Green</option></select>'
            '<p id="out">Selected: red</p>',
        ),
        "/events": _page(
            "Events",
            "<button onmouseover=\"this.textContent='Hovered!'\">Hover me</button> "
            "<button ondblclick=\"this.textContent='Double clicked!'\">Double click me</button> "
            '<p id="key">No key</p><p id="loading">Loading...</p>'
            "<script>document.addEventListener('keydown', e => "
            "document.getElementById('key').textContent = 'Key: ' + e.key);"
            "setTimeout(() => { document.getElementById('loading').remove();"
            " const p = document.createElement('p'); p.textContent = 'Ready now'; document.body.append(p); }, 300);"
            "</script>",
        ),
        "/images": _page(
            "Images",
            f'<p>Images</p><img alt="private pixel" src="http://10.255.255.1/pixel.png">'
            f'<img alt="loopback pixel" src="{denied}/pixel.png">',
        ),
        "/long": _page("Long", "".join(f"<p>Paragraph number {i} with some words.</p>" for i in range(400))),
    }


@dataclass
class Site:
    """The test site and the server it must not reach."""

    url: str
    port: int
    denied_url: str
    denied_hits: list[str] = field(default_factory=list)


class _SiteHandler(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, str]] = {}
    denied_url: ClassVar[str] = ""

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        for name, value in {"Content-Type": "text/html; charset=utf-8", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/redirect-metadata":
            self._send(302, "", {"Location": "http://169.254.169.254/latest/meta-data/"})
        elif parts.path == "/redirect-loopback":
            self._send(302, "", {"Location": f"{self.denied_url}/secret"})
        elif parts.path == "/cookie":
            visitor = query.get("visitor", "anonymous")
            self._send(
                200, _page("Cookie", f"<p>Cookie set for {visitor}</p>"), {"Set-Cookie": f"visitor={visitor}; Path=/"}
            )
        elif parts.path == "/show-cookie":
            self._send(200, _page("Show cookie", f"<p>Cookie header: {self.headers.get('Cookie', 'none')}</p>"))
        elif parts.path == "/submitted":
            fields = "".join(f"<li>{k}={v}</li>" for k, v in sorted(query.items()))
            self._send(200, _page("Submitted", f"<h1>Submitted</h1><ul>{fields}</ul>"))
        elif parts.path in self.pages:
            self._send(200, self.pages[parts.path])
        else:
            self._send(404, _page("Not found", "<p>Not found</p>"))


class _DeniedHandler(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        data = b"secret"
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """The local test site (allow-listed) and a loopback server that is not."""
    hits: ClassVar[list[str]] = []
    denied_handler = type("Denied", (_DeniedHandler,), {"hits": hits})
    denied_server, denied_thread = _serve(denied_handler)
    denied_url = f"http://127.0.0.1:{denied_server.server_address[1]}"
    site_handler = type("Site", (_SiteHandler,), {"pages": _pages(denied_url), "denied_url": denied_url})
    site_server, site_thread = _serve(site_handler)
    port = site_server.server_address[1]
    yield Site(f"http://127.0.0.1:{port}", port, denied_url, hits)
    for server, thread in ((site_server, site_thread), (denied_server, denied_thread)):
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def browser_config(site: Site, tmp_path_factory: pytest.TempPathFactory) -> BrowserConfig:
    """Config for tests: the site allow-listed, short timeouts, no background reaper."""
    return BrowserConfig(
        allow_hosts=(f"127.0.0.1:{site.port}",),
        attachments_dir=Path(tmp_path_factory.mktemp("attachments")),
        action_timeout_s=2.0,
        navigation_timeout_s=10.0,
        settle_timeout_s=2.0,
        max_sessions=6,
        reap_interval_s=0,
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def manager(browser_config: BrowserConfig) -> AsyncIterator[SessionManager]:
    """One chromium for the whole test session."""
    async with SessionManager(browser_config) as manager:
        yield manager


@pytest_asyncio.fixture(loop_scope="session")
async def session(manager: SessionManager) -> AsyncIterator[BrowserSession]:
    """A fresh session (its own context) per test."""
    opened = await manager.open()
    yield opened
    if opened.id in {s.id for s in manager.sessions()}:
        await manager.close(opened.id)


def ref_in(snapshot_text: str, role_and_name: str) -> str:
    """The ref of the first snapshot node that starts with `role_and_name` (`link "Form"`)."""
    for line in snapshot_text.splitlines():
        stripped = line.strip().removeprefix("- ")
        if stripped.startswith(role_and_name) and "[ref=" in stripped:
            return stripped.split("[ref=", 1)[1].split("]", 1)[0]
    raise AssertionError(f"no {role_and_name} in snapshot:\n{snapshot_text}")


@pytest.fixture(scope="session")
def find_ref() -> Callable[[str, str], str]:
    """`find_ref(result.text, 'link "Form"')` -> 'e5'."""
    return ref_in


PLAYWRIGHT_MCP_CACHE = Path.home() / ".cache" / "tracewheel-tests" / "pwmcp"


def _playwright_mcp() -> Path:
    """playwright-mcp pinned at the version our tools copy, installed once into a cache dir."""
    binary = PLAYWRIGHT_MCP_CACHE / "node_modules" / ".bin" / "playwright-mcp"
    package = PLAYWRIGHT_MCP_CACHE / "node_modules" / "@playwright" / "mcp" / "package.json"
    if package.exists() and json.loads(package.read_text())["version"] == PLAYWRIGHT_MCP_VERSION:
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    PLAYWRIGHT_MCP_CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(PLAYWRIGHT_MCP_CACHE), f"@playwright/mcp@{PLAYWRIGHT_MCP_VERSION}"],
        check=True,
        capture_output=True,
        env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
        timeout=600,
    )
    return binary


@pytest.fixture(scope="session")
def playwright_mcp(tmp_path_factory: pytest.TempPathFactory) -> ServerSpec:
    """@playwright/mcp (pinned) as a stdio server on Debian's chromium; never downloads a browser."""
    chromium = shutil.which("chromium")
    assert chromium is not None, "Debian's chromium is required"
    output = tmp_path_factory.mktemp("playwright-mcp-output")  # its console logs, not in the repository
    args = ("--headless", "--no-sandbox", "--isolated", "--executable-path", chromium, "--output-dir", str(output))
    return ServerSpec("playwright", str(_playwright_mcp()), args, {"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
