"""The console's gRPC clients to the trainer, the inference service and the agent.

Each peer is optional: an address left empty (`TW_DATASET_TRAINER_ADDRESS`...) raises
`PeerNotConfigured`, and a peer that does not answer raises `PeerUnavailable`, both naming the
setting or address, so a page can say what is missing instead of failing. Errors the peer
reports on purpose come back as the same domain errors (NotFound, InvalidArgument...).
Calls carry the console's bearer token (the services of one deployment share it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import grpc

from tracewheel.core.errors import (
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TracewheelError,
    Unavailable,
)
from tracewheel.core.grpc_server import message_size_options
from tracewheel.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    events_pb2,
    inference_pb2,
    inference_pb2_grpc,
    trace_pb2,
    trainer_pb2,
    trainer_pb2_grpc,
)

Peer = Literal["trainer", "inference", "agent"]
SETTING: dict[Peer, str] = {
    "trainer": "TW_DATASET_TRAINER_ADDRESS",
    "inference": "TW_DATASET_INFERENCE_ADDRESS",
    "agent": "TW_DATASET_AGENT_ADDRESS",
}
_DOMAIN_ERRORS: dict[grpc.StatusCode, type[TracewheelError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
}
T = TypeVar("T")


PEER_DOWN = (Unavailable, DeadlineExceeded)
"""What a peer that is missing, down or slow raises: pages catch these and show a notice."""


class PeerNotConfigured(Unavailable):
    """The console has no address for this peer."""


class PeerUnavailable(Unavailable):
    """The peer did not answer, or refused the console's token."""


@dataclass
class Peers:
    """gRPC stubs to the other services, made on first use in the running event loop.

    Attributes:
        addresses: host:port per peer; "" for a peer the console does without.
        token: the bearer token sent with every call (None: none).
        max_message_bytes: the largest reply accepted (evaluations carry every task's result).
        timeout_s: the deadline of one call.
    """

    addresses: dict[Peer, str]
    token: str | None = None
    max_message_bytes: int = 64 * 1024 * 1024
    timeout_s: float = 10.0
    _channels: dict[Peer, grpc.aio.Channel] = field(default_factory=dict, repr=False)

    def configured(self, peer: Peer) -> bool:
        return bool(self.addresses.get(peer))

    def _channel(self, peer: Peer) -> grpc.aio.Channel:
        address = self.addresses.get(peer, "")
        if not address:
            raise PeerNotConfigured(f"the console is not connected to the {peer}: set {SETTING[peer]}")
        channel = self._channels.get(peer)
        if channel is None:
            channel = grpc.aio.insecure_channel(address, options=message_size_options(self.max_message_bytes))
            self._channels[peer] = channel
        return channel

    async def _call(self, peer: Peer, call: Callable[[grpc.aio.Channel], Awaitable[T]]) -> T:
        """Runs `call` on the peer's channel; gRPC failures become domain errors that say which peer."""
        channel = self._channel(peer)
        try:
            return await call(channel)
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(peer, self.addresses[peer], exc) from exc

    def _metadata(self) -> tuple[tuple[str, str], ...] | None:
        return (("authorization", f"Bearer {self.token}"),) if self.token else None

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(channel.close() for channel in channels), return_exceptions=True)

    # the trainer

    async def list_jobs(self) -> list[trainer_pb2.Job]:
        reply = await self._call(
            "trainer",
            lambda ch: trainer_pb2_grpc.TrainerStub(ch).ListJobs(
                trainer_pb2.ListJobsRequest(), timeout=self.timeout_s, metadata=self._metadata()
            ),
        )
        return list(reply.jobs)

    async def cancel_job(self, job_id: str) -> trainer_pb2.Job:
        request = trainer_pb2.CancelJobRequest(job_id=job_id)
        return await self._call(
            "trainer",
            lambda ch: trainer_pb2_grpc.TrainerStub(ch).CancelJob(
                request, timeout=self.timeout_s, metadata=self._metadata()
            ),
        )

    async def get_job(self, job_id: str) -> trainer_pb2.JobDetail:
        """A job with its recipe, where it stands and its loss curve (NotFound for an unknown id)."""
        request = trainer_pb2.GetJobRequest(job_id=job_id)
        return await self._call(
            "trainer",
            lambda ch: trainer_pb2_grpc.TrainerStub(ch).GetJob(
                request, timeout=self.timeout_s, metadata=self._metadata()
            ),
        )

    async def job_progress(self, job_id: str) -> events_pb2.TrainingProgress:
        """Where a job stands: the first message of its progress stream (a running job's last report)."""

        async def first(channel: grpc.aio.Channel) -> events_pb2.TrainingProgress:
            request = trainer_pb2.StreamProgressRequest(job_id=job_id)
            call = trainer_pb2_grpc.TrainerStub(channel).StreamProgress(
                request, timeout=self.timeout_s, metadata=self._metadata()
            )
            try:
                message = await call.read()
            finally:
                call.cancel()
            if isinstance(message, events_pb2.TrainingProgress):
                return message
            return events_pb2.TrainingProgress(job_id=job_id)  # the stream ended without a word

        return await self._call("trainer", first)

    async def running_progress(self, jobs: list[trainer_pb2.Job]) -> dict[str, events_pb2.TrainingProgress]:
        """The last progress report of each running job in `jobs`; a job that ended meanwhile, or a
        trainer gone, leaves its job out (any other error is raised)."""
        running = [job.id for job in jobs if job.state == trainer_pb2.JOB_STATE_RUNNING]
        reports = await asyncio.gather(*(self.job_progress(job_id) for job_id in running), return_exceptions=True)
        found: dict[str, events_pb2.TrainingProgress] = {}
        for job_id, report in zip(running, reports, strict=True):
            if isinstance(report, events_pb2.TrainingProgress):
                found[job_id] = report
            elif not isinstance(report, (*PEER_DOWN, NotFound)):
                raise report
        return found

    # the inference service

    async def list_models(self) -> list[inference_pb2.ServedModel]:
        reply = await self._call(
            "inference",
            lambda ch: inference_pb2_grpc.InferenceControlStub(ch).ListModels(
                inference_pb2.ListModelsRequest(), timeout=self.timeout_s, metadata=self._metadata()
            ),
        )
        return list(reply.models)

    async def list_deployments(self) -> list[inference_pb2.Deployment]:
        reply = await self._call(
            "inference",
            lambda ch: inference_pb2_grpc.InferenceControlStub(ch).ListDeployments(
                inference_pb2.ListDeploymentsRequest(), timeout=self.timeout_s, metadata=self._metadata()
            ),
        )
        return list(reply.deployments)

    async def explain_deployment(self, adapter_name: str) -> inference_pb2.Deployment:
        request = inference_pb2.ExplainDeploymentRequest(adapter_name=adapter_name)
        return await self._call(
            "inference",
            lambda ch: inference_pb2_grpc.InferenceControlStub(ch).ExplainDeployment(
                request, timeout=self.timeout_s, metadata=self._metadata()
            ),
        )

    async def set_alias(self, alias: str, target: str) -> inference_pb2.SetAliasResponse:
        request = inference_pb2.SetAliasRequest(alias=alias, target=target)
        return await self._call(
            "inference",
            lambda ch: inference_pb2_grpc.InferenceControlStub(ch).SetAlias(
                request, timeout=self.timeout_s, metadata=self._metadata()
            ),
        )

    async def rollback(self, alias: str) -> inference_pb2.SetAliasResponse:
        request = inference_pb2.RollbackRequest(alias=alias)
        return await self._call(
            "inference",
            lambda ch: inference_pb2_grpc.InferenceControlStub(ch).Rollback(
                request, timeout=self.timeout_s, metadata=self._metadata()
            ),
        )

    # the agent

    async def list_suites(self) -> list[agent_pb2.SuiteInfo]:
        reply = await self._call(
            "agent",
            lambda ch: agent_pb2_grpc.AgentStub(ch).ListSuites(
                agent_pb2.ListSuitesRequest(), timeout=self.timeout_s, metadata=self._metadata()
            ),
        )
        return list(reply.suites)

    async def get_suite(self, name: str) -> agent_pb2.SuiteInfo:
        request = agent_pb2.GetSuiteRequest(name=name)
        return await self._call(
            "agent",
            lambda ch: agent_pb2_grpc.AgentStub(ch).GetSuite(
                request, timeout=self.timeout_s, metadata=self._metadata()
            ),
        )

    async def get_eval_trace(self, trace_id: str) -> trace_pb2.Trace:
        """An evaluation run's trace, from the agent's evaluation trace files (never in the store)."""
        request = agent_pb2.GetEvalTraceRequest(trace_id=trace_id)
        return await self._call(
            "agent",
            lambda ch: agent_pb2_grpc.AgentStub(ch).GetEvalTrace(
                request, timeout=self.timeout_s, metadata=self._metadata()
            ),
        )


def _domain_error(peer: Peer, address: str, exc: grpc.aio.AioRpcError) -> TracewheelError:
    """The domain error for a failed call: the peer's own refusals keep their kind and message."""
    code, details = exc.code(), exc.details() or code_name(exc)
    if code in _DOMAIN_ERRORS:
        return _DOMAIN_ERRORS[code](details)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return PeerUnavailable(
            f"the {peer} at {address} refused the console's token: TW_DATASET_AUTH_TOKEN must be the {peer}'s token"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"the {peer} at {address} did not answer in time")
    return PeerUnavailable(f"the {peer} at {address} did not answer: {details}")


def code_name(exc: grpc.aio.AioRpcError) -> str:
    return str(exc.code().name)
