"""The gRPC helper with a real server: health, reflection, auth, error mapping, shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tracewheel.core.errors import Conflict, NotFound
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.v1 import events_pb2, trainer_pb2, trainer_pb2_grpc

SERVICE = "tracewheel.v1.Trainer"


class FailingTrainer(trainer_pb2_grpc.TrainerServicer):
    async def ListJobs(self, request, context):
        return trainer_pb2.ListJobsResponse(jobs=[trainer_pb2.Job(id="j1")])

    async def CancelJob(self, request, context):
        raise NotFound(f"no job {request.job_id!r}; list jobs with `tracewheel train list`")

    async def StartJob(self, request, context):
        raise Conflict("a job for this dataset is already running")

    async def StreamProgress(self, request, context):
        if request.job_id != "j1":
            raise NotFound(f"no job {request.job_id!r}")
        yield events_pb2.TrainingProgress(job_id=request.job_id, step=1)


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[GrpcServer, str]]:
    token = getattr(request, "param", None)
    server = GrpcServer([SERVICE], auth_token=token)
    trainer_pb2_grpc.add_TrainerServicer_to_server(FailingTrainer(), server.server)
    port = server.bind("127.0.0.1", 0)
    await server.start()
    yield server, f"127.0.0.1:{port}"
    await server.stop(0.5)


async def test_health_reports_serving_then_not_serving_on_shutdown(server: tuple[GrpcServer, str]) -> None:
    grpc_server, address = server
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await grpc_server.health.enter_graceful_shutdown()
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_reflection_lists_the_service(server: tuple[GrpcServer, str]) -> None:
    async with grpc.aio.insecure_channel(server[1]) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = [s.name async for reply in call for s in reply.list_services_response.service]
    assert SERVICE in names and "grpc.health.v1.Health" in names


async def test_domain_errors_map_to_status_codes(server: tuple[GrpcServer, str]) -> None:
    async with grpc.aio.insecure_channel(server[1]) as channel:
        stub = trainer_pb2_grpc.TrainerStub(channel)
        assert (await stub.ListJobs(trainer_pb2.ListJobsRequest())).jobs[0].id == "j1"
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.CancelJob(trainer_pb2.CancelJobRequest(job_id="j9"))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no job 'j9'" in error.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.StartJob(trainer_pb2.StartJobRequest())
        assert error.value.code() == grpc.StatusCode.ABORTED
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in stub.StreamProgress(trainer_pb2.StreamProgressRequest(job_id="x")):
                pass
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        progress = [p async for p in stub.StreamProgress(trainer_pb2.StreamProgressRequest(job_id="j1"))]
        assert [p.step for p in progress] == [1]


@pytest.mark.parametrize("server", ["t0ken"], indirect=True)
async def test_bearer_token_is_required_except_for_health(server: tuple[GrpcServer, str]) -> None:
    async with grpc.aio.insecure_channel(server[1]) as channel:
        stub = trainer_pb2_grpc.TrainerStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.ListJobs(trainer_pb2.ListJobsRequest())
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ListJobs(trainer_pb2.ListJobsRequest(), metadata=[("authorization", "Bearer wrong")])
        reply = await stub.ListJobs(trainer_pb2.ListJobsRequest(), metadata=[("authorization", "Bearer t0ken")])
        assert reply.jobs[0].id == "j1"
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
