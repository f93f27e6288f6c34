"""The REST API on a real uvicorn server (free port) over a real store and builder."""

from __future__ import annotations

import httpx


async def test_rest_traces_curation_edits_and_builds(
    servers: tuple[httpx.AsyncClient, object], store, make_trace
) -> None:
    client, _stub = servers
    for index in range(3):
        store.ingest(make_trace(f"run-{index}", task_id=f"t{index}", created_at=f"2026-11-0{index + 1}T10:00:00Z"))
    page = (await client.get("/api/traces", params={"page_size": 2, "status": "approved"})).json()
    assert [t["trace"]["id"] for t in page["traces"]] == ["run-2", "run-1"] and page["next_page_token"]
    rest = (
        await client.get(
            "/api/traces", params={"page_size": 2, "status": "approved", "page_token": page["next_page_token"]}
        )
    ).json()
    assert [t["trace"]["id"] for t in rest["traces"]] == ["run-0"] and rest["next_page_token"] == ""
    assert (await client.get("/api/traces/nope")).status_code == 404
    assert "nope" in (await client.get("/api/traces/nope")).json()["error"]

    curated = await client.post(
        "/api/traces/run-2/curate", json={"status": "rejected", "reason": "bad", "base_revision": 0}
    )
    assert curated.status_code == 200 and curated.json()["status"] == "rejected"
    edited = make_trace("run-1", task_id="t1", answer="The Blue teapot.")
    response = await client.post("/api/traces/run-1/edit", json={"base_revision": 0, "trace": edited})
    assert response.status_code == 200 and response.json()["revision"] == 1
    stale = await client.post("/api/traces/run-1/edit", json={"base_revision": 0, "trace": edited})
    assert stale.status_code == 409 and "revision 1" in stale.json()["error"]

    built = (await client.post("/api/builds", json={})).json()
    assert built["created"] and set(built["build"]["trace_revisions"]) == {"run-0", "run-1"}
    assert built["build"]["trace_revisions"]["run-1"] == 1
    again = (await client.post("/api/builds")).json()
    assert not again["created"]
    datasets = (await client.get("/api/datasets")).json()["datasets"]
    assert [d["version"] for d in datasets] == [built["build"]["version"]]


async def test_rest_empty_build_is_a_clear_error(servers: tuple[httpx.AsyncClient, object]) -> None:
    client, _stub = servers
    response = await client.post("/api/builds", json={"force": True})
    assert response.status_code == 400 and "no approved traces" in response.json()["error"]


async def test_rest_invalid_requests_answer_400_with_an_error(servers: tuple[httpx.AsyncClient, object]) -> None:
    client, _stub = servers
    response = await client.get("/api/traces", params={"status": "maybe"})
    assert response.status_code == 400 and "status" in response.json()["error"]
    response = await client.get("/api/traces", params={"page_size": 0})
    assert response.status_code == 400 and "page_size" in response.json()["error"]


async def test_numbers_past_a_sql_integer_are_a_400_not_an_overflow(
    servers: tuple[httpx.AsyncClient, object], store, make_trace
) -> None:
    """Found by the schemathesis run (tests/test_fuzz_openapi.py): a revision past BIGINT reached SQLite."""
    client, _stub = servers
    store.ingest(make_trace("run-0"))
    huge = 2**63
    deleted = await client.delete("/api/traces/run-0/messages/1", params={"base_revision": huge})
    curated = await client.post("/api/traces/run-0/curate", json={"status": "rejected", "base_revision": huge})
    edited = await client.post(f"/api/traces/run-0/messages/{huge}", json={"base_revision": 0, "content": "x"})
    for response in (deleted, curated, edited):
        assert response.status_code == 400 and "invalid request" in response.json()["error"]


async def test_a_body_that_is_not_json_gets_the_error_shape(servers: tuple[httpx.AsyncClient, object]) -> None:
    """Found by the schemathesis run: FastAPI's own refusals answered {"detail": ...}, not {"error": ...}."""
    client, _stub = servers
    broken = await client.post("/api/builds", content=b"\xff\xfe{", headers={"content-type": "application/json"})
    unknown = await client.get("/api/nowhere")
    assert broken.status_code == 400 and "parsing the body" in broken.json()["error"]
    assert unknown.status_code == 404 and unknown.json()["error"]
