"""NATS users and subject permissions against a real nats-server: each service does its part of
the flow with its own user, and nothing else; a client without credentials is refused."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import SecretStr

from tracewheel.core.errors import ConfigError
from tracewheel.core.events import (
    SUBJECT_DATASET_BUILT,
    SUBJECT_MODEL_DEPLOYED,
    SUBJECT_MODEL_TRAINED,
    SUBJECT_TRACE_COMPLETED,
    ConsumerSpec,
    connect,
    ensure_streams,
    handle_one,
    publish,
    subscribe,
)
from tracewheel.core.nats_auth import (
    ADMIN_USER,
    ROLES,
    USERS,
    ServerTls,
    check_password,
    declared_streams,
    load_or_create_passwords,
    new_password,
    server_config,
)
from tracewheel.core.natsserver import NatsServer
from tracewheel.v1 import events_pb2, trace_pb2


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server where only the tracewheel users connect, each with its permissions."""
    passwords = {user: new_password() for user in USERS}
    server = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log", passwords=passwords).start()
    yield server
    server.stop()


async def _as(server: NatsServer, user: str):  # type: ignore[no-untyped-def]
    client, js = await connect(server.url, user, server.credentials(user))
    await ensure_streams(js, declared_streams(user))
    return client, js


async def _stored(server: NatsServer, stream: str, subject: str) -> int:
    client, js = await connect(server.url, "admin", server.credentials(ADMIN_USER))
    try:
        info = await js.stream_info(stream, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)
    finally:
        await client.close()


async def _consume_one(js, spec: ConsumerSpec) -> str:  # type: ignore[no-untyped-def]
    subscription = await subscribe(js, spec)
    try:
        (msg,) = await subscription.fetch(1, timeout=10)

        async def ignore(payload: object, msg: object) -> None:
            return None

        return await handle_one(js, spec, msg, ignore)
    finally:
        await subscription.unsubscribe()


async def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(secured: NatsServer) -> None:
    with pytest.raises(ConfigError, match="without credentials"):
        await connect(secured.url, "anonymous")
    wrong = secured.credentials("dataset").model_copy(update={"nats_password": SecretStr(new_password())})
    with pytest.raises(ConfigError, match="'dataset'"):
        await connect(secured.url, "dataset", wrong)


async def test_each_service_user_does_its_part_of_the_flow(secured: NatsServer) -> None:
    """agent -> dataset -> trainer -> inference -> trainer, each with its own user and durable."""
    agent, agent_js = await _as(secured, "agent")
    dataset, dataset_js = await _as(secured, "dataset")
    trainer, trainer_js = await _as(secured, "trainer")
    inference, inference_js = await _as(secured, "inference")
    try:
        trace = events_pb2.TraceCompleted(trace=trace_pb2.Trace(id="t-1"))
        assert await publish(agent_js, SUBJECT_TRACE_COMPLETED, trace, "t-1")
        ingest = ConsumerSpec("TRACES", SUBJECT_TRACE_COMPLETED, "dataset-ingest", events_pb2.TraceCompleted)
        assert await _consume_one(dataset_js, ingest) == "ack"

        built = events_pb2.DatasetBuilt(version="v1", path="/data/datasets/v1")
        assert await publish(dataset_js, SUBJECT_DATASET_BUILT, built, "dataset:v1")
        to_train = ConsumerSpec("DATASETS", SUBJECT_DATASET_BUILT, "trainer", events_pb2.DatasetBuilt)
        assert await _consume_one(trainer_js, to_train) == "ack"

        await trainer.publish("trainer.v1.progress", b"")  # core NATS, no stream
        trained = events_pb2.ModelTrained(adapter_name="a-1", adapter_path="/data/adapters/a-1/adapter")
        assert await publish(trainer_js, SUBJECT_MODEL_TRAINED, trained, "trained:a-1")
        replica = ConsumerSpec("MODELS", SUBJECT_MODEL_TRAINED, "inference-deploy", events_pb2.ModelTrained)
        assert await _consume_one(inference_js, replica) == "ack"

        deployed = events_pb2.ModelDeployed(alias="agent", adapter_name="a-1")
        assert await publish(inference_js, SUBJECT_MODEL_DEPLOYED, deployed, "deployed:agent:a-1")
        # each inference replica follows deployments with an ephemeral consumer the server names
        config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
        follower = await inference_js.pull_subscribe(SUBJECT_MODEL_DEPLOYED, stream="MODELS", config=config)
        assert [m.subject for m in await follower.fetch(1, timeout=10)] == [SUBJECT_MODEL_DEPLOYED]
        await follower.unsubscribe()
        follow = ConsumerSpec("MODELS", SUBJECT_MODEL_DEPLOYED, "trainer-deployed", events_pb2.ModelDeployed)
        assert await _consume_one(trainer_js, follow) == "ack"

        # a consumer dead-letters what it cannot decode: its own deadletter subject is allowed
        await agent_js.publish(SUBJECT_TRACE_COMPLETED, b"\xff not protobuf", headers={"Nats-Msg-Id": "bad"})
        assert await _consume_one(dataset_js, ingest) == "terminated"
    finally:
        for client in (agent, dataset, trainer, inference):
            await client.close()
    assert await _stored(secured, "DEADLETTER", f"deadletter.{SUBJECT_TRACE_COMPLETED}") == 1


@pytest.mark.parametrize(
    ("user", "subject"),
    [
        ("dataset", SUBJECT_MODEL_TRAINED),  # the forged-deployment path
        ("agent", SUBJECT_DATASET_BUILT),
        ("importer", SUBJECT_MODEL_DEPLOYED),
        ("trainer", SUBJECT_MODEL_DEPLOYED),
        ("inference", SUBJECT_MODEL_TRAINED),
    ],
)
async def test_a_user_cannot_publish_a_subject_it_does_not_own(secured: NatsServer, user: str, subject: str) -> None:
    admin, _ = await _as(secured, ADMIN_USER)  # the streams exist, so only the permission refuses
    client, js = await _as(secured, user)
    try:
        with pytest.raises(NatsTimeoutError):  # the server drops it and answers the publisher nothing
            await js.publish(subject, b"forged", headers={"Nats-Msg-Id": "forged"}, timeout=1)
    finally:
        await client.close()
        await admin.close()
    stream = "DATASETS" if subject == SUBJECT_DATASET_BUILT else "MODELS"
    assert await _stored(secured, stream, subject) == 0


async def test_a_user_cannot_read_a_stream_it_does_not_consume(secured: NatsServer) -> None:
    admin, _ = await _as(secured, ADMIN_USER)
    client, js = await _as(secured, "agent")
    try:
        spy = ConsumerSpec("TRACES", SUBJECT_TRACE_COMPLETED, "dataset-ingest", events_pb2.TraceCompleted)
        with pytest.raises(NatsTimeoutError):
            await subscribe(js, spy)
    finally:
        await client.close()
        await admin.close()


def test_every_role_declares_the_streams_it_touches_and_consumers_dead_letter() -> None:
    assert declared_streams("agent") == {"TRACES": ["traces.v1.>"]}
    assert set(declared_streams("dataset")) == {"TRACES", "DATASETS", "DEADLETTER"}
    assert set(declared_streams(ADMIN_USER)) == {"TRACES", "DATASETS", "MODELS", "DEADLETTER"}
    assert all(ROLES[user].publishes for user in ROLES)


def test_passwords_are_kept_private_and_readable_by_the_server(tmp_path: Path) -> None:
    path = tmp_path / "nats" / "passwords.json"
    first = load_or_create_passwords(path)
    assert set(first) == set(USERS) and load_or_create_passwords(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
    for password in first.values():
        check_password("x", password)
    with pytest.raises(ConfigError, match="starting with a letter"):
        check_password("dataset", "0123456789abcdef0")


def test_the_server_checks_the_generated_config(tmp_path: Path) -> None:
    """nats-server -t accepts the configuration with the passwords in its environment."""
    config = tmp_path / "tracewheel.conf"
    config.write_text(server_config(max_payload=8 * 1024 * 1024))
    server = NatsServer(tmp_path)
    env = {f"TW_NATS_PASSWORD_{user.upper()}": new_password() for user in USERS}
    checked = subprocess.run(
        [server.command()[0], "-c", str(config), "-t"], env=env, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "server.pem", folder / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def test_tls_with_credentials(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    passwords = {user: new_password() for user in USERS}
    tls = ServerTls(cert_file=cert, key_file=key)
    with NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log", passwords=passwords, tls=tls) as server:
        options = server.credentials("agent").model_copy(update={"nats_tls_ca": cert})
        assert server.url.startswith("tls://")
        client, js = await connect(server.url, "agent", options)
        try:
            await ensure_streams(js, declared_streams("agent"))
            payload = events_pb2.TraceCompleted(trace=trace_pb2.Trace(id="t-tls"))
            assert await publish(js, SUBJECT_TRACE_COMPLETED, payload, "t-tls")
        finally:
            await client.close()
