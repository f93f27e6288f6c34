"""NATS wiring of the inference service: models.v1.trained in, models.v1.deployed out."""

from __future__ import annotations

import asyncio
import logging

from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from tracewheel.core.errors import InvalidArgument
from tracewheel.core.evaluation_proto import eval_result_from_proto
from tracewheel.core.events import (
    SUBJECT_MODEL_DEPLOYED,
    SUBJECT_MODEL_TRAINED,
    ConsumerSpec,
    Handler,
    PoisonMessage,
    publish,
)
from tracewheel.inference.deploy import Deployer
from tracewheel.v1 import events_pb2

log = logging.getLogger(__name__)

TRAINED = ConsumerSpec("MODELS", SUBJECT_MODEL_TRAINED, "inference-deploy", events_pb2.ModelTrained)


def make_trained_handler(js: JetStreamContext, deployer: Deployer) -> Handler[events_pb2.ModelTrained]:
    async def on_trained(event: events_pb2.ModelTrained, msg: Msg) -> None:
        try:
            metrics = eval_result_from_proto(event.metrics)
            baseline = eval_result_from_proto(event.baseline_metrics) if event.HasField("baseline_metrics") else None
        except InvalidArgument as exc:
            raise PoisonMessage(f"adapter {event.adapter_name!r} has an unreadable evaluation: {exc}") from exc
        try:
            decision = await asyncio.to_thread(
                deployer.apply, event.adapter_name, event.adapter_path, metrics, baseline
            )
        except InvalidArgument as exc:
            raise PoisonMessage(f"adapter {event.adapter_name!r} cannot be served: {exc}") from exc
        if decision.deployed:
            deployed_at = Timestamp()
            deployed_at.GetCurrentTime()
            payload = events_pb2.ModelDeployed(
                alias=decision.alias,
                adapter_name=decision.adapter,
                previous_adapter_name=decision.previous,
                reason=decision.reason,
                deployed_at=deployed_at,
            )
            # published after the decision is on disk; a redelivery republishes the same Msg-Id (deduped)
            await publish(js, SUBJECT_MODEL_DEPLOYED, payload, f"deployed:{decision.alias}:{decision.adapter}")

    return on_trained
