"""gRPC control plane (tracewheel.v1.InferenceControl): transport only, over the registry."""

from __future__ import annotations

import asyncio
from typing import Any

from tracewheel.inference.adapters import ModelRegistry, ServedModel
from tracewheel.inference.deploy import Deployer
from tracewheel.v1 import inference_pb2, inference_pb2_grpc


def _proto(model: ServedModel) -> inference_pb2.ServedModel:
    return inference_pb2.ServedModel(name=model.name, kind=model.kind, target=model.target, path=model.path)


class InferenceControlServicer(inference_pb2_grpc.InferenceControlServicer):
    def __init__(self, registry: ModelRegistry, deployer: Deployer | None = None) -> None:
        self.registry = registry
        self.deployer = deployer

    async def ListDeployments(self, request: Any, context: Any) -> inference_pb2.ListDeploymentsResponse:
        decisions = self.deployer.decisions() if self.deployer is not None else []
        return inference_pb2.ListDeploymentsResponse(
            deployments=[
                inference_pb2.Deployment(
                    adapter_name=d.adapter,
                    deployed=d.deployed,
                    alias=d.alias,
                    previous_target=d.previous,
                    reason=d.reason,
                )
                for d in decisions
            ]
        )

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
        return inference_pb2.SetAliasResponse(alias=request.alias, target=request.target, previous_target=previous)

    async def Rollback(self, request: Any, context: Any) -> inference_pb2.SetAliasResponse:
        target, left = self.registry.rollback(request.alias)
        return inference_pb2.SetAliasResponse(alias=request.alias, target=target, previous_target=left)
