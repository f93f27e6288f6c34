"""The CPU overlay (k8s/overlays/cpu-demo) played with `podman kube play`: its Deployments, the
NATS StatefulSet as three pods, ConfigMaps, claims and Secrets as rendered by kustomize, changed
only where podman cannot run them (kube_play.py says how). A task run on the agent's pod reaches
the store in the dataset's pod through the NATS pods; the TRACES stream is replicated on all three.

The images are the service images of this checkout (tag $TAG); NATS runs from the dataset image's
nats-server (the same 2.15.1 as the manifest's nats:2.15.1-alpine, which no registry serves here).
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tracewheel.core.health import check_health
from tracewheel.core.nats_auth import USERS, new_password, server_environment

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs in importlib mode

import kube_play  # found through the line above

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "k8s" / "overlays" / "cpu-demo"
TOKEN = secrets.token_hex(16)
READY_TIMEOUT_S = 420  # a busy 2-core machine converting the bundled model and starting chromium
NATS_COMMAND = {"nats": ["nats-server"]}  # the official image's entrypoint; a service image has its own
PODS = {f"{name}-pod-0" for name in ("agent", "dataset", "inference", "mcp-gateway", "task-site", "trainer")}
PODS |= {"nats-0", "nats-1", "nats-2"}


def _plan(images: dict[str, str]) -> kube_play.PlayPlan:
    """The overlay with `images` ({service: "tracewheel/<service>:<tag>"}) and NATS from the dataset's."""
    overrides = {}
    for service, image in images.items():
        name, tag = image.rsplit(":", 1)
        overrides[f"tracewheel/{service}"] = (name, tag)
    overrides["nats"] = overrides["tracewheel/dataset"]
    try:
        objects = kube_play.render(OVERLAY, overrides)
    except RuntimeError as error:
        pytest.skip(str(error))
    return kube_play.translate(objects, NATS_COMMAND)


def test_the_translation_plays_every_workload_and_drops_only_what_podman_cannot_run() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not on PATH: the overlay cannot be rendered")
    plan = _plan(
        {name: f"tracewheel/{name}:dev" for name in ("inference", "mcp-gateway", "agent", "dataset", "trainer")}
    )

    assert {pod.name for pod in plan.pods} == PODS
    assert {line.split("/")[0] for line in plan.dropped} <= set(kube_play.DROPPED_KINDS)
    aliases = {alias for pod in plan.pods for alias in pod.aliases}
    services = {line.split(":")[0].split("/")[1] for line in plan.dropped if line.startswith("Service/")}
    assert services <= aliases, f"Services selecting no pod: {services - aliases}"
    assert {f"nats-{i}.nats-headless" for i in range(3)} <= aliases
    claims = {claim["metadata"]["name"] for claim in plan.claims}
    assert {f"data-nats-{i}" for i in range(3)} <= claims
    for pod in plan.pods:
        workload = pod.documents[-1]
        spec = workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
        assert all("ports" not in container for container in spec["containers"]), pod.name
        assert pod.readiness, f"{pod.name}: no readiness probe to wait on"
        maps = {doc["metadata"]["name"] for doc in pod.documents if doc["kind"] == "ConfigMap"}
        for volume in spec.get("volumes", []):
            assert "projected" not in volume, pod.name
            assert "configMap" not in volume or volume["configMap"]["name"] in maps, pod.name
    nats = next(pod for pod in plan.pods if pod.name == "nats-0").documents[-1]["spec"]["containers"][0]
    assert nats["command"] == ["nats-server"]


def _ready(played: kube_play.Played, pod: kube_play.PodPlan) -> bool:
    """Every readiness probe of the pod answers (podman itself runs none)."""
    address = played.ip(pod)
    for probe in pod.readiness:
        if probe.kind == "grpc" and not check_health(f"{address}:{probe.port}", timeout_s=2.0):
            return False
        if probe.kind == "http":
            try:
                with urllib.request.urlopen(f"http://{address}:{probe.port}{probe.path}", timeout=2) as reply:
                    if reply.status != 200:
                        return False
            except OSError:
                return False
    return True


def _wait_ready(played: kube_play.Played, started: float) -> dict[str, float]:
    """Seconds from `started` to each pod's readiness; fails with the logs of those never ready."""
    ready_after: dict[str, float] = {}
    waiting = list(played.plan.pods)
    while waiting:
        for pod in list(waiting):
            if _ready(played, pod):
                ready_after[pod.name] = round(time.monotonic() - started, 1)
                waiting.remove(pod)
        if time.monotonic() - started > READY_TIMEOUT_S:
            logs = "\n".join(f"--- {pod.name}\n{played.logs(pod)}" for pod in waiting)
            pytest.fail(f"not ready after {READY_TIMEOUT_S} s: {[pod.name for pod in waiting]}\n{logs}")
        time.sleep(0.5)
    return ready_after


@pytest.fixture(scope="module")
def played(
    container_engine: str, service_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[kube_play.Played]:
    if container_engine != "podman" or shutil.which("podman") is None:
        pytest.skip("`podman kube play` needs podman (this engine is Docker)")
    plan = _plan(service_images)
    passwords = {user: new_password() for user in USERS}
    secrets_ = {"tracewheel-auth": {"token": TOKEN}, "tracewheel-nats": server_environment(passwords)}
    network = f"tracewheel-kube-{secrets.token_hex(4)}"
    played = kube_play.Played(plan, network, tmp_path_factory.mktemp("kube"))
    try:
        started = time.monotonic()
        kube_play.play(played, secrets_)
        print(f"\nplayed in {time.monotonic() - started:.1f} s; ready after (s): {_wait_ready(played, started)}")
        yield played
    finally:
        started = time.monotonic()
        problems = kube_play.tear_down(played, secrets_)
        print(f"torn down in {time.monotonic() - started:.1f} s")
        assert not problems, "\n".join(problems)


def _address(played: kube_play.Played, pod: str, port: int) -> str:
    return f"{played.ip(played.pod(pod))}:{port}"


def _run_task(played: kube_play.Played) -> str:
    """Runs a task on the agent's pod (agent -> inference -> gateway -> task site); its trace id."""
    from tracewheel.v1 import agent_pb2, agent_pb2_grpc

    request = agent_pb2.RunTaskRequest(
        prompt="Open the shop at http://task-site:8400 and name one category.", max_steps=2, time_limit_s=240
    )
    with grpc.insecure_channel(_address(played, "agent-pod-0", 50053)) as channel:
        events = agent_pb2_grpc.AgentStub(channel).RunTask(
            request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=300
        )
        finished = [event.finished for event in events if event.WhichOneof("kind") == "finished"]
    assert len(finished) == 1, "the run ended without its trace"
    return finished[0].id


def _stored(played: kube_play.Played, trace_id: str, timeout_s: float = 120) -> object:
    """The dataset's stored trace once it is there."""
    from tracewheel.v1 import dataset_pb2, dataset_pb2_grpc

    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(_address(played, "dataset-pod-0", 50054)) as channel:
        store = dataset_pb2_grpc.DatasetStub(channel)
        while True:
            try:
                return store.GetTrace(
                    dataset_pb2.GetTraceRequest(id=trace_id),
                    metadata=(("authorization", f"Bearer {TOKEN}"),),
                    timeout=10,
                )
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)


@pytest.mark.containers
@pytest.mark.timeout(900)
# the Docker API clients of the container fixtures leave their sockets to the garbage collector
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_task_reaches_the_store_across_pods(played: kube_play.Played) -> None:
    started = time.monotonic()
    trace_id = _run_task(played)
    stored = _stored(played, trace_id)
    print(f"\ntask run and stored in {time.monotonic() - started:.1f} s")
    assert stored.trace.id == trace_id
    assert any(m.role == "user" and "Open the shop" in m.content for m in stored.trace.messages)
    assert stored.trace.tools, "no tools: the agent never listed the gateway pod's browser tools"

    monitor = f"http://{_address(played, 'nats-0', 8222)}/jsz?accounts=true&streams=true&config=true"
    with urllib.request.urlopen(monitor, timeout=5) as reply:
        streams = [s for a in json.load(reply).get("account_details", []) for s in a.get("stream_detail", [])]
    traces = next(s for s in streams if s["name"] == "TRACES")
    assert traces["config"]["num_replicas"] == 3
    assert len(traces["cluster"]["replicas"]) == 2, "TRACES is not on all three NATS pods"
