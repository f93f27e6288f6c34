"""HttpGuard over a plain ASGI app: hosts, origins, body limits, bearer tokens, session cookies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from tracewheel.core.http_security import (
    CSRF_HEADER,
    SESSION_COOKIE,
    SESSION_TTL_S,
    HttpGuard,
    HttpOptions,
    HttpSecurity,
    allowed_hosts,
)

TOKEN = "s3cret-token"


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body and answers its length and the CSRF token the guard handed over."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = json.dumps({"size": size, "csrf": scope.get("state", {}).get("csrf_token", "")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": message, "status": status}


def client(**security: Any) -> httpx.AsyncClient:
    options = {"hosts": allowed_hosts([], "127.0.0.1"), "max_body_bytes": 1000} | security
    app = HttpGuard(echo_app, HttpSecurity(**options), _error_body)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8300")


def test_allowed_hosts_default_to_the_bind_address_and_localhost() -> None:
    assert allowed_hosts([], "127.0.0.1") == {"127.0.0.1", "localhost", "::1"}
    assert allowed_hosts([], "10.0.0.5") == {"10.0.0.5", "127.0.0.1", "localhost", "::1"}
    assert allowed_hosts([], "0.0.0.0") is None
    assert allowed_hosts(["UI.example.com"], "0.0.0.0") == {"ui.example.com"}
    assert allowed_hosts(["*"], "127.0.0.1") is None


def test_allowed_hosts_setting_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    class Settings(BaseSettings, HttpOptions):
        model_config = SettingsConfigDict(env_prefix="TW_DEMO_")

    monkeypatch.setenv("TW_DEMO_HTTP_ALLOWED_HOSTS", "ui.example.com, localhost")
    assert Settings().http_allowed_hosts == ["ui.example.com", "localhost"]


async def test_a_foreign_host_is_refused_and_an_allowed_one_served() -> None:
    async with client() as http:
        assert (await http.get("/api/x")).status_code == 200
        assert (await http.get("/api/x", headers={"host": "localhost:8300"})).status_code == 200
        refused = await http.get("/api/x", headers={"host": "attacker.example:8300"})
        assert refused.status_code == 400 and "TW_HTTP_ALLOWED_HOSTS" in refused.json()["error"]
        assert (await http.get("/health", headers={"host": "attacker.example"})).status_code == 400


async def test_a_cross_origin_post_is_refused() -> None:
    async with client() as http:
        same = await http.post("/api/x", json={}, headers={"origin": "http://127.0.0.1:8300"})
        assert same.status_code == 200
        for origin in ("http://evil.example", "http://127.0.0.1:9999", "null"):
            refused = await http.post("/api/x", json={}, headers={"origin": origin})
            assert refused.status_code == 403 and "cross-origin" in refused.json()["error"], origin
        by_referer = await http.post("/api/x", json={}, headers={"referer": "http://evil.example/page"})
        assert by_referer.status_code == 403
        assert (await http.get("/api/x", headers={"origin": "http://evil.example"})).status_code == 200


async def test_bodies_over_the_limit_are_refused_with_413_naming_it() -> None:
    async with client() as http:
        assert (await http.post("/api/x", content=b"x" * 1000)).json()["size"] == 1000
        refused = await http.post("/api/x", content=b"x" * 1001)
        assert refused.status_code == 413 and "limit of 1000 bytes" in refused.json()["error"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            for _ in range(5):
                yield b"y" * 300

        streamed = await http.post("/api/x", content=chunks())
        assert streamed.status_code == 413 and "TW_HTTP_MAX_BODY_BYTES" in streamed.json()["error"]


async def test_bearer_token_no_wrong_and_right() -> None:
    async with client(token=TOKEN) as http:
        missing = await http.get("/api/x")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        wrong = await http.get("/api/x", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "bearer token" in wrong.json()["error"]
        assert (await http.get("/api/x", headers={"authorization": f"Bearer {TOKEN}"})).status_code == 200
        assert (await http.get("/health")).status_code == 200


async def test_pages_go_to_sign_in_and_a_session_cookie_needs_its_csrf_token() -> None:
    security = HttpSecurity(token=TOKEN, sign_in_path="/login", open_paths=("/health", "/login"))
    async with client(token=TOKEN, sign_in_path="/login", open_paths=("/health", "/login")) as http:
        page = await http.get("/traces/a?x=1", headers={"accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Ftraces%2Fa%3Fx%3D1"
        assert (await http.get("/api/x")).status_code == 401  # an API call gets 401, not a redirect

        cookie = security.new_session(secure=False).split(";")[0].split("=", 1)[1]
        http.cookies.set(SESSION_COOKIE, cookie)
        served = await http.get("/traces/a", headers={"accept": "text/html"})
        csrf = served.json()["csrf"]
        assert served.status_code == 200 and csrf
        refused = await http.post("/api/x", json={})
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
        assert (await http.post("/api/x", json={}, headers={CSRF_HEADER: csrf})).status_code == 200

        http.cookies.set(SESSION_COOKIE, cookie[:-2] + "xx")  # a forged signature
        assert (await http.get("/api/x")).status_code == 401


def test_session_cookies_are_signed_expire_and_follow_the_token() -> None:
    security = HttpSecurity(token=TOKEN, sign_in_path="/login")
    header = security.new_session(secure=True, now=1000.0)
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" in header
    assert "Secure" not in security.new_session(secure=False)
    value = header.split(";")[0].split("=", 1)[1]
    assert security.session_id(value, now=1000.0)
    assert security.session_id(value, now=1000.0 + SESSION_TTL_S + 1) is None
    assert HttpSecurity(token="another", sign_in_path="/login").session_id(value, now=1000.0) is None
    assert HttpSecurity().session_id(value, now=1000.0) is None
