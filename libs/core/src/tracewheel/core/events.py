"""Events over NATS JetStream: streams, subjects, publishing, durable consumers.

Contract (docs/events.md): every publish sets `Nats-Msg-Id` so JetStream drops duplicates
inside the stream's duplicate window; every consumer acks only after its effect is durable
and treats a redelivery as a no-op. Payloads are protobuf messages from proto/.

A consumer sorts failures into three kinds:
- the payload cannot be decoded (or the handler raises `PoisonMessage`): logged, copied to
  `deadletter.<subject>` (stream DEADLETTER) and terminated, so it is never redelivered;
- any other exception is transient: nak with a growing delay, up to `max_deliver` tries;
- the last failed try is dead-lettered and terminated too, so nothing vanishes silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from tracewheel.core.errors import ConfigError
from tracewheel.core.metrics import CONSUMER_ACK_PENDING, CONSUMER_PENDING, EVENTS_HANDLED
from tracewheel.core.settings import NatsOptions

log = logging.getLogger(__name__)

SUBJECT_TRACE_COMPLETED = "traces.v1.completed"
SUBJECT_DATASET_BUILT = "datasets.v1.built"
SUBJECT_MODEL_TRAINED = "models.v1.trained"
SUBJECT_MODEL_DEPLOYED = "models.v1.deployed"
SUBJECT_TRAINING_PROGRESS = "trainer.v1.progress"  # core NATS, not persisted
DEAD_LETTER_PREFIX = "deadletter."

# stream name -> subjects it captures
STREAMS: dict[str, list[str]] = {
    "TRACES": ["traces.v1.>"],
    "DATASETS": ["datasets.v1.>"],
    "MODELS": ["models.v1.>"],
    "DEADLETTER": [DEAD_LETTER_PREFIX + ">"],
}
LAG_SAMPLE_S = 15.0  # how often a consumer refreshes its lag gauges from the consumer info
DUPLICATE_WINDOW_S = 24 * 3600.0  # a day: redeliveries from a restarted publisher still dedup


class PoisonMessage(Exception):
    """A handler raises this for a payload that will never succeed (e.g. an invalid trace)."""


def inbox_prefix(user: str) -> str:
    """The reply-subject prefix of `user`'s connections; its NATS permissions let only it subscribe there."""
    return f"_INBOX_{user}"


async def connect(url: str, name: str, options: NatsOptions | None = None) -> tuple[NatsClient, JetStreamContext]:
    """Connects to NATS (with `options`' user, password and TLS when given) and returns the client
    and its JetStream context. A user's replies come on its own inbox prefix (`inbox_prefix`).
    While the server is unreachable it keeps trying; credentials it refuses fail at once.

    Raises:
        ConfigError: the server refused the credentials (or their absence).
    """
    kwargs: dict[str, Any] = {}
    user = options.nats_user if options is not None else ""
    if options is not None and options.nats_password is not None:
        password = options.nats_password.get_secret_value()
        kwargs |= {"user": user, "password": password, "inbox_prefix": inbox_prefix(user)}
    if options is not None and (tls := options.nats_tls()) is not None:
        kwargs["tls"] = tls
    client = NatsClient()
    connected = False

    async def on_error(exc: Exception) -> None:
        # a refused permission arrives here too (the request it belonged to then times out)
        if not connected and "authorization violation" in str(exc).lower():
            who = f"user {user!r}" if user else "a client without credentials"
            raise ConfigError(f"NATS at {url} refused {who}; check the NATS user and password settings")
        log.error("NATS (%s): %s", name, exc)

    try:
        await client.connect(
            url,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,  # type: ignore[arg-type]  # nats-py annotates int; it sleeps for a float
            error_cb=on_error,
            **kwargs,
        )
    except ConfigError:
        await client.close()
        raise
    connected = True
    return client, client.jetstream()


async def ensure_streams(
    js: JetStreamContext, streams: dict[str, list[str]] = STREAMS, replicas: int | None = None
) -> None:
    """Declares the streams idempotently: created when missing (with `replicas`, default 1), updated
    when their subjects drifted or they have fewer than `replicas` (None: whatever they have)."""
    for name, subjects in streams.items():
        config = StreamConfig(
            name=name, subjects=subjects, duplicate_window=DUPLICATE_WINDOW_S, num_replicas=replicas or 1
        )
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            try:
                await js.add_stream(config)
                log.info("created stream %s for %s", name, subjects)
                continue
            except BadRequestError:  # another service created it at the same moment
                info = await js.stream_info(name)
        have = info.config.num_replicas or 1
        if replicas is None:
            config.num_replicas = have  # a service that does not say keeps what the stream has
        wanted = config.num_replicas or 1  # set above; StreamConfig types it Optional
        if sorted(info.config.subjects or []) != sorted(subjects) or have < wanted:
            await js.update_stream(config)
            log.info("updated stream %s to %s, %d replica(s)", name, subjects, config.num_replicas)


async def publish(js: JetStreamContext, subject: str, payload: Message, msg_id: str) -> bool:
    """Publishes a protobuf payload with `Nats-Msg-Id`; returns False when it was a duplicate."""
    ack = await js.publish(subject, payload.SerializeToString(), headers={"Nats-Msg-Id": msg_id})
    return not ack.duplicate


P = TypeVar("P", bound=Message)
Handler = Callable[[P, Msg], Awaitable[None]]


@dataclass
class ConsumerSpec(Generic[P]):
    """A durable pull consumer: which stream/subject, its durable name, and the payload type."""

    stream: str
    subject: str
    durable: str
    payload_type: type[P]
    max_deliver: int = 5
    ack_wait_s: float = 60.0
    backoff_s: Sequence[float] = field(default=(0.5, 2.0, 8.0, 30.0))

    def nak_delay(self, delivered: int) -> float:
        return self.backoff_s[min(delivered, len(self.backoff_s)) - 1]


async def _dead_letter(js: JetStreamContext, msg: Msg, reason: str) -> None:
    headers = {"Tw-Original-Subject": msg.subject, "Tw-Reason": reason[:512]}
    msg_id = (msg.headers or {}).get("Nats-Msg-Id")
    if msg_id:
        headers["Nats-Msg-Id"] = msg_id
    await js.publish(DEAD_LETTER_PREFIX + msg.subject, msg.data, headers=headers)


async def handle_one(js: JetStreamContext, spec: ConsumerSpec[P], msg: Msg, handler: Handler[P]) -> str:
    """Decodes, runs the handler and settles the message. Returns what happened (for tests/logs)."""
    delivered = msg.metadata.num_delivered
    try:
        payload = spec.payload_type.FromString(msg.data)
    except DecodeError as exc:
        log.error(
            "undecodable %s payload on %s (%d bytes): %s; dead-lettered",
            spec.payload_type.__name__,
            msg.subject,
            len(msg.data),
            exc,
        )
        await _dead_letter(js, msg, f"decode error: {exc}")
        await msg.term()
        return "terminated"
    try:
        await handler(payload, msg)
    except PoisonMessage as exc:
        log.error("poison message on %s: %s; dead-lettered", msg.subject, exc)
        await _dead_letter(js, msg, f"poison: {exc}")
        await msg.term()
        return "terminated"
    except Exception as exc:
        if delivered >= spec.max_deliver:
            log.exception(
                "handler failed on delivery %d of %d on %s; dead-lettered", delivered, spec.max_deliver, msg.subject
            )
            await _dead_letter(js, msg, f"gave up after {delivered} deliveries: {exc}")
            await msg.term()
            return "terminated"
        delay = spec.nak_delay(delivered)
        log.warning("handler failed on %s (delivery %d): %s; retrying in %.1f s", msg.subject, delivered, exc, delay)
        await msg.nak(delay=delay)
        return "nak"
    await msg.ack_sync()
    return "ack"


async def subscribe(js: JetStreamContext, spec: ConsumerSpec[P]) -> JetStreamContext.PullSubscription:
    """Binds (creating if needed) the durable pull consumer."""
    config = ConsumerConfig(
        durable_name=spec.durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=spec.ack_wait_s,
        max_deliver=spec.max_deliver,
        filter_subject=spec.subject,
    )
    return await js.pull_subscribe(spec.subject, durable=spec.durable, stream=spec.stream, config=config)


async def _sample_lag(subscription: JetStreamContext.PullSubscription, durable: str) -> None:
    """Sets the consumer's lag gauges from its JetStream consumer info (a metric is never worth a crash)."""
    try:
        info = await subscription.consumer_info()
    except Exception as exc:  # a slow or restarting server: keep consuming, sample next time
        log.debug("consumer info of %s unavailable: %s", durable, exc)
        return
    CONSUMER_PENDING.labels(durable).set(info.num_pending or 0)
    CONSUMER_ACK_PENDING.labels(durable).set(info.num_ack_pending or 0)


async def run_consumer(
    js: JetStreamContext,
    spec: ConsumerSpec[P],
    handler: Handler[P],
    stop: asyncio.Event,
    *,
    batch: int = 8,
    poll_s: float = 1.0,
) -> None:
    """Fetches and handles messages one at a time, in order, until `stop` is set."""
    subscription = await subscribe(js, spec)
    log.info("consuming %s as %s", spec.subject, spec.durable)
    sampled_at = 0.0
    try:
        while not stop.is_set():
            if time.monotonic() - sampled_at >= LAG_SAMPLE_S:
                sampled_at = time.monotonic()
                await _sample_lag(subscription, spec.durable)
            try:
                messages = await subscription.fetch(batch, timeout=poll_s)
            except (NatsTimeoutError, TimeoutError):  # no message within poll_s (either error type)
                continue
            for msg in messages:
                outcome = await handle_one(js, spec, msg, handler)
                EVENTS_HANDLED.labels(spec.durable, outcome).inc()
                CONSUMER_PENDING.labels(spec.durable).set(msg.metadata.num_pending)
    finally:
        await subscription.unsubscribe()
