"""gRPC control plane (tracewheel.v1.InferenceControl): transport only, over the registry."""

from __future__ import annotations

import asyncio
from typing import Any

from tracewheel.core.errors import NotFound, Unavailable
from tracewheel.core.evaluation_proto import eval_result_to_proto
from tracewheel.inference.adapters import ModelRegistry, ServedModel
from tracewheel.inference.deploy import Decision, Deployer
from tracewheel.inference.events import AliasAnnouncer
from tracewheel.v1 import inference_pb2, inference_pb2_grpc


def _proto(model: ServedModel) -> inference_pb2.ServedModel:
    return inference_pb2.ServedModel(name=model.name, kind=model.kind, target=model.target, path=model.path)


def _deployment(decision: Decision) -> inference_pb2.Deployment:
    message = inference_pb2.Deployment(
        adapter_name=decision.adapter,
        deployed=decision.deployed,
        alias=decision.alias,
        previous_target=decision.previous,
        reason=decision.reason,
    )
    if decision.gate is not None:
        gate = decision.gate
        message.gate.CopyFrom(inference_pb2.DeployGate(mode=gate.mode, min_gain=gate.min_gain, max_p=gate.max_p))
    if decision.candidate is not None:
        message.candidate.CopyFrom(eval_result_to_proto(decision.candidate))
    if decision.compared_with is not None:
        message.compared_with.CopyFrom(eval_result_to_proto(decision.compared_with))
    if decision.split is not None:
        split = decision.split
        message.split.CopyFrom(
            inference_pb2.PairedSplit(won=split.won, lost=split.lost, both=split.both, p_greater=split.p_greater())
        )
    return message


class InferenceControlServicer(inference_pb2_grpc.InferenceControlServicer):
    """`announce` (set once NATS is connected) tells the other replicas about an alias moved here;
    None: this replica is alone (no events)."""

    def __init__(
        self, registry: ModelRegistry, deployer: Deployer | None = None, announce: AliasAnnouncer | None = None
    ) -> None:
        self.registry = registry
        self.deployer = deployer
        self.announce = announce

    async def ListDeployments(self, request: Any, context: Any) -> inference_pb2.ListDeploymentsResponse:
        decisions = self.deployer.decisions() if self.deployer is not None else []
        return inference_pb2.ListDeploymentsResponse(deployments=[_deployment(d) for d in decisions])

    async def ExplainDeployment(self, request: Any, context: Any) -> inference_pb2.Deployment:
        if self.deployer is None:
            raise NotFound("this control service keeps no deployment record")
        return _deployment(self.deployer.explain(request.adapter_name))

    async def ListModels(self, request: Any, context: Any) -> inference_pb2.ListModelsResponse:
        return inference_pb2.ListModelsResponse(models=[_proto(m) for m in self.registry.list()])

    async def LoadAdapter(self, request: Any, context: Any) -> inference_pb2.LoadAdapterResponse:
        model, seconds = await asyncio.to_thread(self.registry.load, request.lora_name, request.lora_path)
        return inference_pb2.LoadAdapterResponse(model=_proto(model), load_seconds=seconds)

    async def UnloadAdapter(self, request: Any, context: Any) -> inference_pb2.UnloadAdapterResponse:
        await asyncio.to_thread(self.registry.unload, request.lora_name)
        return inference_pb2.UnloadAdapterResponse()

    async def SetAlias(self, request: Any, context: Any) -> inference_pb2.SetAliasResponse:
        previous = self.registry.set_alias(request.alias, request.target)
        await self._tell_replicas(request.alias, request.target, previous, rollback=False)
        return inference_pb2.SetAliasResponse(alias=request.alias, target=request.target, previous_target=previous)

    async def Rollback(self, request: Any, context: Any) -> inference_pb2.SetAliasResponse:
        target, left = self.registry.rollback(request.alias)
        await self._tell_replicas(request.alias, target, left, rollback=True)
        return inference_pb2.SetAliasResponse(alias=request.alias, target=target, previous_target=left)

    async def _tell_replicas(self, alias: str, target: str, previous: str, *, rollback: bool) -> None:
        """Raises:
        Unavailable: the move is made here but could not be published to the other replicas."""
        if self.announce is None:
            return
        try:
            await self.announce(alias, target, previous, rollback)
        except Exception as exc:  # NATS down or refusing: this replica moved, the others did not
            raise Unavailable(
                f"alias {alias} now points at {target} on this replica, but the other replicas were not told "
                f"({type(exc).__name__}: {exc}); repeat the move when NATS is back"
            ) from exc
