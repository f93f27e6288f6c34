"""NATS wiring of the inference service: models.v1.trained in, models.v1.deployed out and in.

The gate runs once per adapter: replicas share the durable `inference-deploy` on
models.v1.trained, so one of them loads the adapter, decides and publishes models.v1.deployed
(with the adapter's path and evaluation). Every replica, that one included, follows
models.v1.deployed with its own ephemeral consumer (`follow_deployments`): at start it reads the
subject's history, applies the last deployment of each alias (a replica that was down catches
up), then applies each new one as it comes; an alias moved by hand on one replica (SetAlias,
Rollback) is published there too (`make_alias_announcer`). The adapter folders must be on storage every
replica reads at the same path (the adapters volume on Kubernetes).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from tracewheel.core.errors import InvalidArgument, TracewheelError
from tracewheel.core.evaluation_proto import eval_result_from_proto, eval_result_to_proto
from tracewheel.core.events import (
    SUBJECT_MODEL_DEPLOYED,
    SUBJECT_MODEL_TRAINED,
    ConsumerSpec,
    Handler,
    PoisonMessage,
    publish,
)
from tracewheel.core.metrics import DEPLOYMENTS
from tracewheel.inference.deploy import Deployer
from tracewheel.v1 import events_pb2

log = logging.getLogger(__name__)

TRAINED = ConsumerSpec("MODELS", SUBJECT_MODEL_TRAINED, "inference-deploy", events_pb2.ModelTrained)
FOLLOWER_IDLE_S = 300.0  # the server deletes a stopped replica's ephemeral consumer after this


def make_trained_handler(js: JetStreamContext, deployer: Deployer) -> Handler[events_pb2.ModelTrained]:
    async def on_trained(event: events_pb2.ModelTrained, msg: Msg) -> None:
        try:
            metrics = eval_result_from_proto(event.metrics)
            baseline = eval_result_from_proto(event.baseline_metrics) if event.HasField("baseline_metrics") else None
            claimed = metrics if event.HasField("metrics") else None  # None: the event carries no evaluation
        except InvalidArgument as exc:
            raise PoisonMessage(f"adapter {event.adapter_name!r} has an unreadable evaluation: {exc}") from exc
        try:
            # checked against the trainer's record first (provenance.py); a refusal is recorded, not deployed
            decision = await asyncio.to_thread(
                deployer.apply_trained, event.adapter_name, event.adapter_path, claimed, baseline
            )
        except InvalidArgument as exc:
            DEPLOYMENTS.labels("refused").inc()
            raise PoisonMessage(f"adapter {event.adapter_name!r} cannot be served: {exc}") from exc
        DEPLOYMENTS.labels("deployed" if decision.deployed else "kept").inc()
        if decision.deployed:
            deployed_at = Timestamp()
            deployed_at.GetCurrentTime()
            payload = events_pb2.ModelDeployed(
                alias=decision.alias,
                adapter_name=decision.adapter,
                previous_adapter_name=decision.previous,
                reason=decision.reason,
                deployed_at=deployed_at,
                adapter_path=event.adapter_path,
                metrics=eval_result_to_proto(metrics),
            )
            # published after the decision is on disk; a redelivery republishes the same Msg-Id (deduped)
            await publish(js, SUBJECT_MODEL_DEPLOYED, payload, f"deployed:{decision.alias}:{decision.adapter}")

    return on_trained


AliasAnnouncer = Callable[[str, str, str, bool], Awaitable[None]]
"""`announce(alias, target, previous, rollback)`: tells every replica an alias moved here by hand."""


def make_alias_announcer(js: JetStreamContext, deployer: Deployer) -> AliasAnnouncer:
    """Publishes a hand-made move (SetAlias, Rollback) on models.v1.deployed, so every replica's
    follower applies it, a replica that is down when it comes back, and the trainer warm-starts
    from what is served now. Each move gets its own Msg-Id: rolling back to an adapter deployed
    before must not be deduplicated as that earlier deployment."""
    base = deployer.registry.base_name

    async def announce(alias: str, target: str, previous: str, rollback: bool) -> None:
        moved_at = Timestamp()
        moved_at.GetCurrentTime()
        evaluation = deployer.record.evaluation(target)
        payload = events_pb2.ModelDeployed(
            alias=alias,
            adapter_name="" if target == base else target,
            previous_adapter_name="" if previous == base else previous,
            rollback=rollback,
            reason="rolled back by hand" if rollback else "moved by hand",
            deployed_at=moved_at,
            adapter_path=deployer.registry.adapters.get(target, ""),
            metrics=eval_result_to_proto(evaluation) if evaluation is not None else None,
        )
        await publish(js, SUBJECT_MODEL_DEPLOYED, payload, f"moved:{alias}:{target}:{uuid.uuid4().hex}")

    return announce


def _apply(deployer: Deployer, event: events_pb2.ModelDeployed) -> None:
    """Applies one deployment here; one that cannot be applied is logged, not retried."""
    evaluation = None
    try:
        if event.HasField("metrics"):
            evaluation = eval_result_from_proto(event.metrics)
        deployer.follow(event.alias, event.adapter_name, event.adapter_path, evaluation)
    except TracewheelError as exc:
        log.error("cannot serve the deployment of %r as %r here: %s", event.adapter_name, event.alias, exc)


def _deployed_events(messages: list[Msg]) -> Iterator[events_pb2.ModelDeployed]:
    """The decoded models.v1.deployed payloads of `messages`; an undecodable one is logged and skipped."""
    for msg in messages:
        try:
            yield events_pb2.ModelDeployed.FromString(msg.data)
        except DecodeError:
            log.error("undecodable %s payload skipped", SUBJECT_MODEL_DEPLOYED)


async def _catch_up(subscription: JetStreamContext.PullSubscription, deployer: Deployer, batch: int) -> None:
    """Reads the deployments already in the stream and applies the last one of each alias."""
    latest: dict[str, events_pb2.ModelDeployed] = {}
    while True:
        try:
            messages = await subscription.fetch(batch, timeout=1.0)
        except (NatsTimeoutError, TimeoutError):
            break  # nothing (more) in the stream
        for event in _deployed_events(messages):
            latest[event.alias] = event
        if messages[-1].metadata.num_pending == 0:
            break
    for event in latest.values():
        await asyncio.to_thread(_apply, deployer, event)
    log.info("caught up with %d alias(es) from %s", len(latest), SUBJECT_MODEL_DEPLOYED)


async def follow_deployments(
    js: JetStreamContext, deployer: Deployer, stop: asyncio.Event, *, poll_s: float = 1.0, batch: int = 64
) -> None:
    """This replica's own follower of models.v1.deployed, until `stop` is set (see the module docstring)."""
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.ALL,
        inactive_threshold=FOLLOWER_IDLE_S,
    )
    subscription = await js.pull_subscribe(SUBJECT_MODEL_DEPLOYED, stream="MODELS", config=config)
    try:
        await _catch_up(subscription, deployer, batch)
        while not stop.is_set():
            try:
                messages = await subscription.fetch(batch, timeout=poll_s)
            except (NatsTimeoutError, TimeoutError):
                continue
            for event in _deployed_events(messages):
                await asyncio.to_thread(_apply, deployer, event)
    finally:
        await subscription.unsubscribe()
