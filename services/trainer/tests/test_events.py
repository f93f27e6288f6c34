"""The service wired as in __main__, against a real nats-server: datasets.v1.built -> models.v1.trained."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import yaml

from tracewheel.core.events import (
    SUBJECT_DATASET_BUILT,
    SUBJECT_MODEL_DEPLOYED,
    SUBJECT_MODEL_TRAINED,
    SUBJECT_TRAINING_PROGRESS,
    connect,
    publish,
)
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.natsserver import NatsServer
from tracewheel.core.service import Cleanup
from tracewheel.trainer.__main__ import setup
from tracewheel.trainer.config import TrainerSettings
from tracewheel.trainer.warm_start import DeploymentLog
from tracewheel.v1 import events_pb2, trainer_pb2, trainer_pb2_grpc


async def start_trainer(
    nats_server: NatsServer,
    tiny_model_dir: Path,
    tmp_path: Path,
    recipe_options: dict,
    datasets_dir: Path | None = None,
) -> tuple[GrpcServer, int, Cleanup]:
    """The service as __main__ wires it, on the tiny model, with a recipe of `recipe_options`."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(recipe_options))
    settings = TrainerSettings(
        nats_url=nats_server.url,
        grpc_port=0,
        state_dir=tmp_path / "state",
        adapters_dir=tmp_path / "adapters",
        datasets_dir=datasets_dir or tmp_path,  # the dataset fixture's folder is tmp_path/dataset
        base_model_dir=tiny_model_dir,
        recipe_path=recipe,
    )
    server = GrpcServer(["tracewheel.v1.Trainer"])
    port = server.bind("127.0.0.1", 0)
    cleanup = await setup(settings, server)
    await server.start()
    return server, port, cleanup


async def test_dataset_built_event_trains_and_publishes_model_trained(
    nats_server: NatsServer, tiny_model_dir: Path, dataset_dir: Path, tmp_path: Path
) -> None:
    options = {"max_steps": 1, "save_steps": 1, "lora_r": 4, "per_device_train_batch_size": 1, "device": "cpu"}
    server, port, cleanup = await start_trainer(nats_server, tiny_model_dir, tmp_path, options | {"eval": False})
    client, js = await connect(nats_server.url, "test")
    trained: asyncio.Queue[events_pb2.ModelTrained] = asyncio.Queue()
    phases: list[str] = []

    async def on_trained(msg) -> None:  # type: ignore[no-untyped-def]
        await trained.put(events_pb2.ModelTrained.FromString(msg.data))

    async def on_progress(msg) -> None:  # type: ignore[no-untyped-def]
        phases.append(events_pb2.TrainingProgress.FromString(msg.data).phase)

    await client.subscribe(SUBJECT_MODEL_TRAINED, cb=on_trained)
    await client.subscribe(SUBJECT_TRAINING_PROGRESS, cb=on_progress)
    try:
        built = events_pb2.DatasetBuilt(version="ds-1", path=str(dataset_dir), base_model="tiny", train_rows=8)
        await publish(js, SUBJECT_DATASET_BUILT, built, "dataset:ds-1")

        event = await asyncio.wait_for(trained.get(), timeout=90)

        assert event.dataset_version == "ds-1" and event.base_model == "tiny"
        assert (Path(event.adapter_path) / "adapter_model.safetensors").exists()
        assert event.adapter_name == event.job_id and not event.HasField("metrics")
        assert "training" in phases and "queued" in phases
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trainer_pb2_grpc.TrainerStub(channel)
            (job,) = (await stub.ListJobs(trainer_pb2.ListJobsRequest())).jobs
            assert job.id == event.job_id and job.state == trainer_pb2.JOB_STATE_SUCCEEDED
            progress = [p async for p in stub.StreamProgress(trainer_pb2.StreamProgressRequest(job_id=job.id))]
            assert [p.phase for p in progress] == ["done"]  # a finished job: its state, then the stream ends
            try:
                await stub.StartJob(trainer_pb2.StartJobRequest(dataset_path=str(tmp_path / "nope")))
                raise AssertionError("StartJob accepted a missing dataset")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "does not exist" in (exc.details() or "")
    finally:
        await client.close()
        await server.stop(0)
        await cleanup()


async def test_a_job_after_a_deployment_starts_from_the_deployed_adapter(
    nats_server: NatsServer, tiny_model_dir: Path, dataset_dir: Path, tmp_path: Path
) -> None:
    options = {"max_steps": 1, "save_steps": 1, "lora_r": 4, "device": "cpu", "eval": False, "warm_start_epochs": 1}
    server, port, cleanup = await start_trainer(nats_server, tiny_model_dir, tmp_path, options)
    client, js = await connect(nats_server.url, "test")
    trained: asyncio.Queue[events_pb2.ModelTrained] = asyncio.Queue()

    async def on_trained(msg) -> None:  # type: ignore[no-untyped-def]
        await trained.put(events_pb2.ModelTrained.FromString(msg.data))

    await client.subscribe(SUBJECT_MODEL_TRAINED, cb=on_trained)
    try:
        await publish(js, SUBJECT_DATASET_BUILT, events_pb2.DatasetBuilt(version="ds-1", path=str(dataset_dir)), "d:1")
        first = await asyncio.wait_for(trained.get(), timeout=90)
        deployed = events_pb2.ModelDeployed(alias="agent", adapter_name=first.adapter_name, reason="gate passed")
        await publish(js, SUBJECT_MODEL_DEPLOYED, deployed, "deployed:1")
        deployments = DeploymentLog(tmp_path / "state" / "deployments.json")
        for _ in range(100):
            if deployments.adapter_for("agent"):
                break
            await asyncio.sleep(0.1)
        assert deployments.adapter_for("agent") == first.adapter_name

        await publish(js, SUBJECT_DATASET_BUILT, events_pb2.DatasetBuilt(version="ds-2", path=str(dataset_dir)), "d:2")
        second = await asyncio.wait_for(trained.get(), timeout=90)

        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            jobs = {
                j.id: j
                for j in (await trainer_pb2_grpc.TrainerStub(channel).ListJobs(trainer_pb2.ListJobsRequest())).jobs
            }
        assert jobs[first.job_id].init_adapter == ""  # nothing was deployed: from the base model
        assert jobs[second.job_id].init_adapter == first.adapter_path
    finally:
        await client.close()
        await server.stop(0)
        await cleanup()


async def test_a_dataset_event_naming_a_folder_outside_the_datasets_folder_is_refused(
    nats_server: NatsServer, tiny_model_dir: Path, dataset_dir: Path, tmp_path: Path
) -> None:
    """A forged datasets.v1.built queues no training on a path of its choosing: it is dead-lettered."""
    datasets = tmp_path / "datasets"
    (datasets / "link").parent.mkdir()
    (datasets / "link").symlink_to(dataset_dir)  # inside by name, outside once followed
    server, port, cleanup = await start_trainer(nats_server, tiny_model_dir, tmp_path, {"device": "cpu"}, datasets)
    client, js = await connect(nats_server.url, "test")
    try:
        forged = [str(dataset_dir), f"{datasets}/../dataset", str(datasets / "link"), "dataset"]
        for number, path in enumerate(forged):
            built = events_pb2.DatasetBuilt(version=f"forged-{number}", path=path)
            await publish(js, SUBJECT_DATASET_BUILT, built, f"dataset:forged-{number}")
        dead = await js.pull_subscribe(f"deadletter.{SUBJECT_DATASET_BUILT}", durable="dead", stream="DEADLETTER")
        letters = []
        while len(letters) < len(forged):
            letters += await dead.fetch(len(forged) - len(letters), timeout=30)
        assert all("refused" in letter.headers["Tw-Reason"] for letter in letters)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            jobs = (await trainer_pb2_grpc.TrainerStub(channel).ListJobs(trainer_pb2.ListJobsRequest())).jobs
        assert list(jobs) == []
    finally:
        await client.close()
        await server.stop(0)
        await cleanup()
