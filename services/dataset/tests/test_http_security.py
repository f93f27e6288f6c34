"""The dataset REST API and curation UI behind the token: bearer, sign-in and session, CSRF, Host and
Origin checks, size limits, and a build before the base model exists (uvicorn on a free port)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tracewheel.core.http_security import CSRF_HEADER, SESSION_COOKIE, HttpSecurity
from tracewheel.core.http_server import HttpServer
from tracewheel.dataset.build import BuildConfig, DatasetBuilder
from tracewheel.dataset.config import DatasetSettings
from tracewheel.dataset.http_api import OPEN_PATHS, create_app
from tracewheel.dataset.signin import SIGN_IN_PATH
from tracewheel.dataset.store import TraceStore
from tracewheel.dataset.tokenizer import LazyTokenizer

from .conftest import TraceFactory

TOKEN = "dataset-test-token"
BEARER = {"authorization": f"Bearer {TOKEN}"}
HTML = {"accept": "text/html"}


@pytest.fixture
async def url(store: TraceStore, make_trace: TraceFactory, tmp_path: Path) -> AsyncIterator[str]:
    """The app as `__main__` guards it, with a builder whose base model folder does not exist yet."""
    settings = DatasetSettings(auth_token=TOKEN, TRACEWHEEL_HOME=tmp_path)
    security = HttpSecurity.from_settings(
        settings.auth_token, settings, "127.0.0.1", "TW_DATASET_", open_paths=OPEN_PATHS, sign_in_path=SIGN_IN_PATH
    )
    missing = tmp_path / "models" / "SmolLM2-135M-Instruct"
    builder = DatasetBuilder(
        store, LazyTokenizer(str(missing)), BuildConfig(base_model=str(missing), chat_template="{{ x }}"), tmp_path
    )

    async def build(*, force: bool) -> Any:
        return await asyncio.to_thread(builder.build)

    store.ingest(make_trace("run-1", verdict="failed"))
    server = HttpServer(create_app(store, build, None, security), "127.0.0.1", 0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


async def test_rest_needs_the_bearer_token_and_health_does_not(url: str) -> None:
    curate = {"status": "rejected", "reason": "r", "base_revision": 0}
    async with httpx.AsyncClient(base_url=url) as http:
        for headers in ({}, {"authorization": "Bearer wrong"}):
            assert (await http.get("/api/traces", headers=headers)).status_code == 401
            refused = await http.post("/api/traces/run-1/curate", json=curate, headers=headers)
            assert refused.status_code == 401 and "bearer token" in refused.json()["error"]
        assert (await http.get("/api/traces", headers=BEARER)).status_code == 200
        assert (await http.post("/api/traces/run-1/curate", json=curate, headers=BEARER)).status_code == 200
        assert (await http.get("/health")).json() == {"status": "ok"}
        assert (await http.get("/static/ui.css")).status_code == 200  # the sign-in page's style


async def _sign_in(http: httpx.AsyncClient) -> tuple[str, str]:
    """Signs in through the form; returns the session cookie and the page's CSRF token."""
    form = {"token": TOKEN, "next": "/traces/run-1"}
    signed_in = await http.post(SIGN_IN_PATH, data=form, headers={"origin": str(http.base_url).rstrip("/")})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/traces/run-1"
    set_cookie = signed_in.headers["set-cookie"]
    assert set_cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Secure" not in set_cookie
    cookie = set_cookie.split(";")[0]
    http.cookies.clear()  # sent by hand below, so each request says what it carries
    page = await http.get("/traces/run-1", headers=HTML | {"cookie": cookie})
    assert page.status_code == 200 and "Sign out" in page.text
    csrf = page.text.split('<meta name="csrf-token" content="')[1].split('"')[0]
    assert csrf
    return cookie, csrf


async def test_the_ui_signs_in_and_its_session_cookie_works(url: str, store: TraceStore) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/?status=pending", headers=HTML)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F%3Fstatus%3Dpending"
        form = await http.get("/login?next=/traces/run-1")
        assert form.status_code == 200 and 'value="/traces/run-1"' in form.text
        wrong = await http.post(SIGN_IN_PATH, data={"token": "wrong", "next": "/"})
        assert wrong.status_code == 401 and "not this service&#39;s token" in wrong.text
        away = await http.post(SIGN_IN_PATH, data={"token": TOKEN, "next": "//evil.example/"})
        assert away.headers["location"] == "/"  # never sent to another site

        cookie, csrf = await _sign_in(http)
        approve = {"status": "approved", "reason": "", "base_revision": 0}
        session = {"cookie": cookie}
        refused = await http.post("/api/traces/run-1/curate", json=approve, headers=session)
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
        done = await http.post("/api/traces/run-1/curate", json=approve, headers=session | {CSRF_HEADER: csrf})
        assert done.status_code == 200 and store.get("run-1").status == "approved"
        signed_out = await http.post("/logout", headers=session | {CSRF_HEADER: csrf})
        assert signed_out.status_code == 204 and "Max-Age=0" in signed_out.headers["set-cookie"]


async def test_cross_origin_posts_and_foreign_hosts_are_refused(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        cookie, csrf = await _sign_in(http)
        approve = {"status": "approved", "reason": "", "base_revision": 0}
        forged = await http.post(
            "/api/traces/run-1/curate",
            json=approve,
            headers={"cookie": cookie, CSRF_HEADER: csrf, "origin": "http://evil.example"},
        )
        assert forged.status_code == 403 and "cross-origin" in forged.json()["error"]
        login_csrf = await http.post(SIGN_IN_PATH, data={"token": TOKEN}, headers={"origin": "http://evil.example"})
        assert login_csrf.status_code == 403
        port = url.rsplit(":", 1)[1]
        rebound = await http.get("/api/traces", headers=BEARER | {"host": f"attacker.example:{port}"})
        assert rebound.status_code == 400 and "TW_DATASET_HTTP_ALLOWED_HOSTS" in rebound.json()["error"]
        assert (await http.get("/api/traces", headers=BEARER | {"host": f"localhost:{port}"})).status_code == 200


async def test_a_10mb_edit_is_refused_while_health_answers_fast(url: str, make_trace: TraceFactory) -> None:
    huge = make_trace("run-1", verdict="failed")
    huge["messages"][3]["content"] = "x" * 10_000_000
    async with httpx.AsyncClient(base_url=url, headers=BEARER, timeout=60) as http:
        edit = asyncio.create_task(http.post("/api/traces/run-1/edit", json={"base_revision": 0, "trace": huge}))
        latencies = []
        while not edit.done():
            started = time.perf_counter()
            assert (await http.get("/health")).status_code == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
        refused = edit.result()
        assert refused.status_code == 413 and "limit of 8388608 bytes" in refused.json()["error"]
        assert "TW_DATASET_HTTP_MAX_BODY_BYTES" in refused.json()["error"]
        assert latencies and max(latencies) < 0.1, latencies
        notes = await http.post("/api/traces/run-1/notes", json={"notes": "n" * 20_001})
        assert notes.status_code == 400 and "20000 characters" in notes.json()["error"]


async def test_a_build_before_the_base_model_exists_says_so(url: str) -> None:
    approve = {"status": "approved", "reason": "", "base_revision": 0}
    async with httpx.AsyncClient(base_url=url, headers=BEARER) as http:
        assert (await http.post("/api/traces/run-1/curate", json=approve)).status_code == 200
        built = await http.post("/api/builds", json={"force": True})
    assert built.status_code == 503, built.text
    assert "is not there yet" in built.json()["error"] and "start it and retry" in built.json()["error"]
