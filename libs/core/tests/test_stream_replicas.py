"""Streams replicated on a 3-node JetStream cluster, as the k8s base runs NATS: a node down loses nothing."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.errors import Error as NatsError

from tracewheel.core.events import SUBJECT_MODEL_TRAINED, connect, ensure_streams, publish
from tracewheel.core.natsserver import free_port, nats_server_binary, wait_for_port
from tracewheel.v1 import events_pb2

MODELS = {"MODELS": ["models.v1.>"]}


def _node_config(index: int, client: int, routes: list[int], store: Path) -> str:
    others = ", ".join(f"nats-route://127.0.0.1:{port}" for port in routes)
    return (
        f"server_name: n{index}\nlisten: 127.0.0.1:{client}\n"
        f'jetstream {{ store_dir: "{store}" }}\n'
        f"cluster {{ name: tw, listen: 127.0.0.1:{routes[index]}, routes: [{others}] }}\n"
    )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[str], list[subprocess.Popen[bytes]]]]:
    """Three nats-server processes routed into one JetStream cluster; their URLs and processes."""
    clients, routes = [free_port() for _ in range(3)], [free_port() for _ in range(3)]
    processes = []
    for index in range(3):
        config = tmp_path / f"n{index}.conf"
        config.write_text(_node_config(index, clients[index], routes, tmp_path / f"js{index}"))
        with (tmp_path / f"n{index}.log").open("wb") as log:  # the child keeps its own copy of the file
            processes.append(subprocess.Popen([nats_server_binary(), "-c", str(config)], stdout=log, stderr=log))
    try:
        for port in clients:
            wait_for_port("127.0.0.1", port, timeout_s=15)
        yield [f"nats://127.0.0.1:{port}" for port in clients], processes
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


async def _declare_when_the_cluster_is_ready(url: str, replicas: int) -> None:
    """ensure_streams, retried until the nodes have elected a JetStream leader."""
    client, js = await connect(url, "test")
    try:
        async with asyncio.timeout(60):
            while True:
                try:
                    await ensure_streams(js, MODELS, replicas)
                    return
                except (NatsError, TimeoutError):  # no meta leader yet
                    await asyncio.sleep(0.5)
    finally:
        await client.close()


async def _until(check, what: str) -> object:  # type: ignore[no-untyped-def]
    """Retries `check` (a coroutine function) until it returns a true value: elections take a moment."""
    try:
        async with asyncio.timeout(60):
            while True:
                try:
                    if result := await check():
                        return result
                except (NatsError, TimeoutError):
                    pass
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise AssertionError(what) from None


async def test_streams_are_replicated_on_three_nodes_and_survive_one_down(
    cluster: tuple[list[str], list[subprocess.Popen[bytes]]],
) -> None:
    urls, processes = cluster
    await _declare_when_the_cluster_is_ready(urls[0], replicas=1)
    await _declare_when_the_cluster_is_ready(urls[1], replicas=3)  # a service of the k8s base: raised to 3
    await _declare_when_the_cluster_is_ready(urls[2], replicas=None)  # one that does not say keeps 3
    client, js = await connect(urls[0], "test")
    try:

        async def replicated():  # type: ignore[no-untyped-def]
            info = await js.stream_info("MODELS")
            peers = [peer for peer in info.cluster.replicas or [] if peer.current]
            return info if info.cluster.leader and len(peers) == 2 else None

        info = await _until(replicated, "the stream never had a leader and two current replicas")
        assert info.config.num_replicas == 3  # type: ignore[attr-defined]
        leader = info.cluster.leader  # type: ignore[attr-defined]

        async def first():  # type: ignore[no-untyped-def]
            await publish(js, SUBJECT_MODEL_TRAINED, events_pb2.ModelTrained(adapter_name="a1"), "trained:a1")
            return True

        await _until(first, "the replicated stream took no message")
    finally:
        await client.close()

    down = int(leader.removeprefix("n"))  # the stream's leader goes down
    processes[down].terminate()
    processes[down].wait(10)
    client, js = await connect(urls[(down + 1) % 3], "test")
    try:

        async def published():  # type: ignore[no-untyped-def]
            trained = events_pb2.ModelTrained(adapter_name="a2")
            await publish(js, SUBJECT_MODEL_TRAINED, trained, "trained:a2")  # a retry after a lost ack dedups
            return True

        await _until(published, "no new leader took the stream")  # two of three nodes: a quorum
        assert (await js.stream_info("MODELS")).state.messages == 2
    finally:
        await client.close()
