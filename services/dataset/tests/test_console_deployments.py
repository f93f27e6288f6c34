"""The deployment pages over HTTP against inference's and the agent's real servicers: bad input,
escaping, peers down, the alias actions' answers and their auth."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tracewheel.core.http_security import HttpSecurity, allowed_hosts
from tracewheel.dataset.store import TraceStore

from .console_deployment_peers import HOSTILE_ADAPTER, DeploymentPeers
from .web import console_client

TOKEN = "deployments-test-token"


@pytest.fixture
async def client(store: TraceStore, peers: DeploymentPeers) -> AsyncIterator[httpx.AsyncClient]:
    async with console_client(store, {"inference": peers.inference, "agent": peers.agent}) as opened:
        yield opened


async def test_pages_escape_what_the_peers_hold(client: httpx.AsyncClient) -> None:
    listed = await client.get("/console/deployments")
    assert listed.status_code == 200
    assert "<img src=x" not in listed.text and "<script>document" not in listed.text
    assert "a3&lt;img src=x onerror=alert(1)&gt;" in listed.text
    assert 'href="/console/deployments/a3%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"' in listed.text
    hostile = await client.get("/console/deployments/a3%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E")
    assert hostile.status_code == 200 and HOSTILE_ADAPTER not in hostile.text
    assert "<script>document" not in hostile.text and "&lt;script&gt;document.title" in hostile.text
    run = await client.get("/console/runs/trace-a2-t2?adapter=a2")
    assert run.status_code == 200 and "<script>document" not in run.text
    assert "&lt;script&gt;document.title" in run.text and 'href="/console/deployments/a2"' in run.text


async def test_a_decision_links_both_runs_of_each_task_won_and_lost(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/deployments/a2")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert 'won 1</span> · <span class="lost">lost 3</span> · both solved 3' in text
    for task in ("t7", "t2", "t5", "t6"):  # won t7; lost t2, t5, t6
        assert f'href="/console/runs/trace-a2-{task}?adapter=a2"' in text
        assert f'href="/console/runs/trace-a1-{task}?adapter=a2"' in text
    assert "trace-a2-t1?" not in text  # solved by both: not listed


async def test_unknown_or_unsafe_names_are_their_own_pages(client: httpx.AsyncClient) -> None:
    missing = await client.get("/console/deployments/nope")
    assert missing.status_code == 404 and "no deployment decision recorded for adapter &#39;nope&#39;" in missing.text
    unknown_run = await client.get("/console/runs/trace-nope")
    assert unknown_run.status_code == 404 and "no evaluation trace &#39;trace-nope&#39;" in unknown_run.text
    unsafe_run = await client.get("/console/runs/trace*")
    assert unsafe_run.status_code == 400 and "is not a trace file name" in unsafe_run.text


async def test_alias_actions_answer_previous_and_new_or_the_refusal(
    client: httpx.AsyncClient, peers: DeploymentPeers
) -> None:
    moved = await client.post("/console/api/alias/move", json={"alias": "agent", "target": "a2"})
    assert moved.json() == {"message": "alias agent: a1 -> a2"}
    assert peers.registry.aliases["agent"] == "a2"
    back = await client.post("/console/api/alias/rollback", json={"alias": "agent"})
    assert back.json() == {"message": "alias agent: a2 -> a1 (rolled back)"}
    refused = await client.post("/console/api/alias/move", json={"alias": "agent", "target": "nope"})
    assert refused.status_code == 404 and "cannot point 'agent' at 'nope'" in refused.json()["error"]
    no_history = await client.post("/console/api/alias/rollback", json={"alias": "canary"})
    assert no_history.status_code == 400 and "no earlier target" in no_history.json()["error"]
    empty = await client.post("/console/api/alias/move", json={"alias": "agent", "target": ""})
    assert empty.status_code == 400
    assert peers.registry.aliases == {"agent": "a1", "canary": "tiny"}


async def test_peers_down_or_not_configured_leave_a_notice(store: TraceStore) -> None:
    async with console_client(store, {"inference": "127.0.0.1:1", "agent": ""}) as client:
        listed = await client.get("/console/deployments")
        assert listed.status_code == 503 and 'class="notice-peer">the inference at 127.0.0.1:1' in listed.text
        run = await client.get("/console/runs/trace-a2-t1")
        assert run.status_code == 503 and "set TW_DATASET_AGENT_ADDRESS" in run.text
        rollback = await client.post("/console/api/alias/rollback", json={"alias": "agent"})
        assert rollback.status_code == 503 and "did not answer" in rollback.json()["error"]


async def test_alias_actions_need_the_token(store: TraceStore, peers: DeploymentPeers) -> None:
    security = HttpSecurity(token=TOKEN, hosts=allowed_hosts([], "127.0.0.1"), setting_prefix="TW_DATASET_")
    async with console_client(store, {"inference": peers.inference}, security) as client:
        refused = await client.post("/console/api/alias/rollback", json={"alias": "agent"})
        assert refused.status_code == 401 and peers.registry.aliases["agent"] == "a1"
        allowed = await client.post(
            "/console/api/alias/rollback", json={"alias": "agent"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert allowed.json() == {"message": "alias agent: a1 -> tiny (rolled back)"}
