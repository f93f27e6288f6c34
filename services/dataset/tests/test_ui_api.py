"""The edit endpoints the curation UI uses, the pages and the attachments route (httpx over ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore

from .conftest import TraceFactory


async def _no_build(*, force: bool) -> None:
    raise AssertionError("no build in these tests")


@pytest.fixture
def attachments(tmp_path: Path) -> Path:
    directory = tmp_path / "attachments"
    (directory / "session-1").mkdir(parents=True)
    (directory / "session-1" / "page.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (directory / "session-1" / "snapshot.html").write_text("<script>alert(1)</script>")
    (tmp_path / "secret.txt").write_text("not for the browser")
    return directory


@pytest.fixture
async def client(store: TraceStore, attachments: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, _no_build, attachments)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui.test") as opened:
        yield opened


async def test_message_edit_delete_strip_tags_notes(client: httpx.AsyncClient, store, make_trace) -> None:
    store.ingest(make_trace("run-1"))
    edited = await client.post("/api/traces/run-1/messages/4", json={"base_revision": 0, "content": "Blue teapot."})
    assert edited.status_code == 200 and edited.json()["revision"] == 1
    assert store.get("run-1").trace.messages[4].content == "Blue teapot."
    reasoning = await client.post(
        "/api/traces/run-1/messages/4", json={"base_revision": 1, "reasoning_content": "Listed first."}
    )
    assert reasoning.json()["trace"]["messages"][4]["reasoning_content"] == "Listed first."
    stripped = await client.post("/api/traces/run-1/strip-guidance", json={"base_revision": 2})
    assert stripped.status_code == 200 and stripped.json()["trace"]["metadata"]["guidance_stripped"]
    deleted = await client.delete("/api/traces/run-1/messages/1", params={"base_revision": 3})
    assert [m["role"] for m in deleted.json()["trace"]["messages"]] == ["user", "assistant"]
    tagged = await client.post("/api/traces/run-1/tags", json={"add": ["hard", "shop"], "remove": ["verified"]})
    assert tagged.json()["tags"] == ["hard", "shop"]
    noted = await client.post("/api/traces/run-1/notes", json={"notes": "check the price"})
    assert noted.json()["notes"] == "check the price"
    summaries = [r["summary"] for r in (await client.get("/api/traces/run-1/revisions")).json()["revisions"]]
    assert summaries[:4] == [
        "ingest",
        "edit messages[4].content",
        "edit messages[4].reasoning_content",
        "strip guidance prompt",
    ]


async def test_delete_turn_takes_its_tool_results(client: httpx.AsyncClient, store, make_trace) -> None:
    store.ingest(make_trace("run-1"))
    response = await client.delete("/api/traces/run-1/messages/2", params={"base_revision": 0})
    assert response.status_code == 200
    assert [m["role"] for m in response.json()["trace"]["messages"]] == ["system", "user", "assistant"]
    tool = await client.delete("/api/traces/run-1/messages/2", params={"base_revision": 1})
    assert tool.status_code == 200  # now the final answer, an assistant turn


async def test_stale_base_revision_is_409(client: httpx.AsyncClient, store, make_trace) -> None:
    store.ingest(make_trace("run-1"))
    await client.post("/api/traces/run-1/messages/1", json={"base_revision": 0, "content": "Which product?"})
    calls = [
        client.post("/api/traces/run-1/messages/1", json={"base_revision": 0, "content": "x"}),
        client.delete("/api/traces/run-1/messages/4", params={"base_revision": 0}),
        client.post("/api/traces/run-1/strip-guidance", json={"base_revision": 0}),
        client.post("/api/traces/run-1/curate", json={"status": "approved", "base_revision": 0}),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 409 and "revision 1" in response.json()["error"]
    assert store.get("run-1").revision == 1


async def test_validation_errors_name_the_message_index(client: httpx.AsyncClient, store, make_trace) -> None:
    store.ingest(make_trace("run-1"))
    missing = await client.post("/api/traces/run-1/messages/9", json={"base_revision": 0, "content": "x"})
    assert missing.status_code == 400 and "messages[9]" in missing.json()["error"]
    tool = await client.delete("/api/traces/run-1/messages/3", params={"base_revision": 0})
    assert tool.status_code == 400 and "messages[3]" in tool.json()["error"]
    broken = make_trace("run-1")
    broken["messages"][3]["tool_call_id"] = "nobody-called-this"
    invalid = await client.post("/api/traces/run-1/edit", json={"base_revision": 0, "trace": broken})
    assert invalid.status_code == 400 and "messages[3]" in invalid.json()["error"]
    both = await client.post(
        "/api/traces/run-1/messages/1", json={"base_revision": 0, "content": "a", "reasoning_content": "b"}
    )
    assert both.status_code == 400 and "exactly one" in both.json()["error"]
    rejected = await client.post("/api/traces/run-1/curate", json={"status": "rejected", "reason": " "})
    assert rejected.status_code == 400 and "reason" in rejected.json()["error"]
    assert store.get("run-1").revision == 0


async def test_counts_follow_filters(client: httpx.AsyncClient, store, make_trace: TraceFactory) -> None:
    store.ingest(make_trace("run-1"))
    store.ingest(make_trace("run-2", task_id="t2", verdict="failed"))
    store.ingest(make_trace("run-3", task_id="t3", suite="docs", verdict="failed"))
    assert (await client.get("/api/counts")).json() == {"pending": 2, "approved": 1, "rejected": 0}
    assert (await client.get("/api/counts", params={"suite": "shop"})).json()["pending"] == 1


async def test_attachments_serve_only_files_inside_the_directory(client: httpx.AsyncClient) -> None:
    image = await client.get("/attachments/session-1/page.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    html = await client.get("/attachments/session-1/snapshot.html")
    assert (
        html.headers["content-type"].startswith("text/plain") and "sandbox" in html.headers["content-security-policy"]
    )
    for escape in ("%2e%2e/secret.txt", "session-1/%2e%2e/%2e%2e/secret.txt", "..%2Fsecret.txt", "%2Fetc%2Fpasswd"):
        response = await client.get(f"/attachments/{escape}")
        assert response.status_code == 400 and "outside" in response.json()["error"], escape
    assert (await client.get("/attachments/session-1/none.png")).status_code == 404


async def test_pages_escape_html_and_show_screenshots(
    client: httpx.AsyncClient, store, make_trace, attachments: Path
) -> None:
    trace = make_trace("run-1")
    shot = attachments / "session-1" / "page.png"
    trace["messages"][3]["content"] = f"<script>alert('pwned')</script>\n[image saved to {shot} (image/png, 12 bytes)]"
    store.ingest(trace)
    page = await client.get("/traces/run-1")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page.text
    assert 'src="/attachments/session-1/page.png"' in page.text
    listing = await client.get("/", params={"status": "approved", "suite": ""})
    assert listing.status_code == 200 and "/traces/run-1?status=approved" in listing.text
    bad = await client.get("/", params={"verdict": "maybe"})
    assert bad.status_code == 400 and "Invalid filter" in bad.text
