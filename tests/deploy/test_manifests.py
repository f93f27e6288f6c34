"""The Kubernetes overlays, rendered with `kubectl kustomize`, against the project's rules.

Probes, resources and a non-root security context on every container; ports as in the
architecture; images named as in docker-compose.yml; settings the services accept; references
(ConfigMaps, PVCs, Services, ServiceAccounts) that resolve; the trainer's Job template loading
into `K8sJobTemplate`; field names checked against the kubernetes client's models.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml
from deploy_helpers import (
    GRPC_PORTS,
    HTTP_PORTS,
    KUSTOMIZE_NAMESPACE,
    METRICS_PORTS,
    NATS_CLIENT_PORT,
    OVERLAYS,
    containers,
    find,
    image_name,
    unknown_tw_variables,
    workloads,
)

pytestmark = pytest.mark.parametrize("overlay", OVERLAYS)

SERVICES = ("inference", "mcp-gateway", "agent", "dataset", "trainer")


def test_every_container_has_probes_and_resources(rendered, overlay):
    problems = []
    for workload in workloads(rendered[overlay]):
        for container in containers(workload):
            where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    problems.append(f"{where}: no {probe}")
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(bound, {}))
                if missing:
                    problems.append(f"{where}: resources.{bound} lacks {sorted(missing)}")
    assert not problems, "\n".join(problems)


def test_every_container_runs_unprivileged(rendered, overlay):
    problems = []
    for workload in workloads(rendered[overlay]):
        pod_context = workload["spec"]["template"]["spec"].get("securityContext", {})
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            context = container.get("securityContext", {})
            if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
                problems.append(f"{where}: runAsNonRoot is not true")
            if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
                problems.append(f"{where}: runAsUser 0")
            if context.get("privileged"):
                problems.append(f"{where}: privileged")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in context.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not dropped (drop: [ALL])")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem writable")
    assert not problems, "\n".join(problems)


def test_services_listen_on_the_architecture_ports_with_grpc_probes(rendered, overlay):
    objects = rendered[overlay]
    for service in SERVICES:
        (container,) = containers(find(objects, "Deployment", service))
        ports = {p["containerPort"] for p in container["ports"]}
        expected = {GRPC_PORTS[service]} | ({HTTP_PORTS[service]} if service in HTTP_PORTS else set())
        expected |= {METRICS_PORTS[service]} if service in METRICS_PORTS else set()
        assert ports == expected, f"{service} listens on {ports}, the architecture says {expected}"
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe].get("grpc", {}).get("port") == GRPC_PORTS[service], f"{service} {probe}"
        service_ports = {p["port"] for p in find(objects, "Service", service)["spec"]["ports"]}
        assert service_ports == expected, f"Service {service} exposes {service_ports}, expected {expected}"
    (site,) = containers(find(objects, "Deployment", "task-site"))
    assert {p["containerPort"] for p in site["ports"]} == {HTTP_PORTS["task-site"]}
    assert {p["port"] for p in find(objects, "Service", "nats")["spec"]["ports"]} == {NATS_CLIENT_PORT}


def test_every_service_is_annotated_for_prometheus(rendered, overlay):
    objects = rendered[overlay]
    for service in SERVICES:
        port = str(METRICS_PORTS.get(service) or HTTP_PORTS[service])
        pod = find(objects, "Deployment", service)["spec"]["template"]["metadata"]
        for annotated in (pod["annotations"], find(objects, "Service", service)["metadata"]["annotations"]):
            assert annotated["prometheus.io/scrape"] == "true", service
            assert annotated["prometheus.io/port"] == port, service
            assert annotated["prometheus.io/path"] == "/metrics", service


def test_images_are_those_of_docker_compose(rendered, compose, overlay):
    compose_images = {image_name(s["image"]) for s in compose["services"].values()}
    compose_nats = compose["services"]["nats"]["image"]
    for workload in workloads(rendered[overlay]):
        for container in containers(workload):
            image = container["image"]
            if workload["metadata"]["name"] == "nats":
                assert image == compose_nats, f"NATS {image} differs from compose's {compose_nats}"
            else:
                assert image_name(image) in compose_images, f"{image} is not an image of docker-compose.yml"
                assert ":" in image.rsplit("/", 1)[-1], f"{image} has no tag"
    gpu = overlay == "gpu"
    (inference,) = containers(find(rendered[overlay], "Deployment", "inference"))
    (trainer,) = containers(find(rendered[overlay], "Deployment", "trainer"))
    assert image_name(inference["image"]) == ("tracewheel/inference-gpu" if gpu else "tracewheel/inference")
    assert image_name(trainer["image"]) == ("tracewheel/trainer-gpu" if gpu else "tracewheel/trainer")


def _config_maps(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}


def test_settings_are_known_and_the_token_is_a_secret(rendered, overlay):
    objects = rendered[overlay]
    maps = _config_maps(objects)
    for service in SERVICES:
        (container,) = containers(find(objects, "Deployment", service))
        names = [e["name"] for e in container.get("env", [])]
        for source in container.get("envFrom", []):
            name = source["configMapRef"]["name"]
            assert name in maps, f"{service} reads ConfigMap {name}, which is not rendered"
            names += list(maps[name])
        unknown = unknown_tw_variables(service, names)
        assert not unknown, f"{service} would refuse to start: {unknown}"
        token = [e for e in container.get("env", []) if e["name"].endswith("_AUTH_TOKEN")]
        assert len(token) == 1 and "secretKeyRef" in token[0].get("valueFrom", {}), f"{service}: token not a Secret"
        assert any(n.endswith("_ENVIRONMENT") for n in names), f"{service} does not run as production"


def test_references_resolve(rendered, overlay):
    objects = rendered[overlay]
    claims = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    accounts = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}
    maps = _config_maps(objects)
    for workload in workloads(objects):
        pod = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert pod.get("serviceAccountName") in accounts, f"{name}: ServiceAccount {pod.get('serviceAccountName')}"
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, f"{name}: PVC of {volume['name']}"
            if "configMap" in volume:
                assert volume["configMap"]["name"] in maps, f"{name}: ConfigMap of {volume['name']}"
        mounted = {m["name"] for c in containers(workload) for m in c.get("volumeMounts", [])}
        assert mounted <= {v["name"] for v in pod.get("volumes", [])} | {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
        }, f"{name} mounts a volume it does not declare"
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in workloads(objects)]
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pods), f"Service {service['metadata']['name']}"
    assert all(o["metadata"].get("namespace", KUSTOMIZE_NAMESPACE) == KUSTOMIZE_NAMESPACE for o in objects)


def _ingress_ports(policy: dict[str, Any]) -> set[int]:
    return {p["port"] for rule in policy["spec"].get("ingress", []) for p in rule.get("ports", [])}


def test_network_policies_deny_by_default_and_admit_every_served_port(rendered, overlay):
    objects = rendered[overlay]
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert any(p["spec"]["podSelector"] == {} and p["spec"].get("ingress") is None for p in policies)

    def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
        selector = policy["spec"]["podSelector"]  # {} selects every pod
        if not selector.get("matchLabels", {}).items() <= labels.items():
            return False
        return all(
            e["operator"] == "In" and labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", [])
        )

    for workload in workloads(objects):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        allowed = set().union(*(_ingress_ports(p) for p in policies if selects(p, labels)))
        served = {p["containerPort"] for c in containers(workload) for p in c.get("ports", [])}
        missing = served - allowed
        assert not missing, f"{workload['metadata']['name']}: no NetworkPolicy admits ports {missing}"


def test_nats_is_a_three_node_jetstream_cluster(rendered, overlay):
    objects = rendered[overlay]
    nats = find(objects, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    headless = find(objects, "Service", nats["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    config = _config_maps(objects)["nats-config"]["nats.conf"]
    assert re.search(r"jetstream\s*\{[^}]*store_dir:\s*/data", config), "JetStream is not on /data"
    routes = set(re.findall(r"nats://([\w.-]+):6222", config))
    assert routes == {f"nats-{i}.{headless['metadata']['name']}" for i in range(3)}
    assert [t["metadata"]["name"] for t in nats["spec"]["volumeClaimTemplates"]] == ["data"]


def test_gpu_only_in_the_gpu_overlay(rendered, overlay):
    objects = rendered[overlay]
    on_gpu = set()
    for workload in workloads(objects):
        limits = [c.get("resources", {}).get("limits", {}) for c in containers(workload)]
        if any("nvidia.com/gpu" in bound for bound in limits):
            on_gpu.add(workload["metadata"]["name"])
            assert workload["spec"]["template"]["spec"].get("nodeSelector"), f"{workload['metadata']['name']}"
    if overlay == "gpu":
        # the trainer's pod holds no GPU: each training is a Job that asks for its own
        assert on_gpu == {"inference"}
        assert _config_maps(objects)["trainer-config"]["TW_TRAINER_RUNNER"] == "kubernetes"
        assert _training_job(objects)[0].gpus >= 1
        assert _config_maps(objects)["inference-config"]["TW_INFERENCE_BACKEND"] == "vllm"
    else:
        assert on_gpu == set()
        assert _config_maps(objects)["inference-config"]["TW_INFERENCE_BACKEND"] == "transformers"


def _training_job(objects: list[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    """The overlay's K8sJobTemplate and the Job the trainer's Kubernetes mode builds from it."""
    from tracewheel.trainer.jobs import Job
    from tracewheel.trainer.k8s_job import K8sJobTemplate, build_k8s_job

    fields = yaml.safe_load(_config_maps(objects)["trainer-job-template"]["job-template.yaml"])
    template = K8sJobTemplate(**fields)  # an unknown field raises TypeError
    job = Job(
        id="agent-20261121-171500-1a2b3c",
        dataset_version="ds-1",
        dataset_path=f"{template.datasets_mount}/ds-1",
        base_model="Qwen3-4B",
    )
    return template, build_k8s_job(job, template)


def test_trainer_job_template_loads_and_renders_a_valid_job(rendered, compose, overlay):
    objects = rendered[overlay]
    template, manifest = _training_job(objects)
    pod = manifest["spec"]["template"]["spec"]
    claims = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    assert {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]} <= claims
    assert manifest["metadata"]["namespace"] == KUSTOMIZE_NAMESPACE
    assert template.service_account in {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}
    assert image_name(template.image) == image_name(compose["services"]["trainer-gpu"]["image"])
    (trainer,) = containers(find(objects, "Deployment", "trainer"))
    mounts = {m["mountPath"] for m in trainer["volumeMounts"]}
    assert {template.datasets_mount, template.adapters_mount, template.models_mount} <= mounts
    assert bool(template.node_selector) == (overlay == "gpu")
    assert pod["securityContext"]["runAsNonRoot"] is True
    template_file = _config_maps(objects)["trainer-config"].get("TW_TRAINER_JOB_TEMPLATE")
    if template_file:  # the runner reads the ConfigMap where the Deployment mounts it
        assert str(PurePosixPath(template_file).parent) in mounts


def test_objects_match_the_kubernetes_schema(rendered, overlay):
    """The client's models (pydantic, extra fields forbidden) refuse unknown or missing fields."""
    models = pytest.importorskip("kubernetes.client.models", reason="the kubernetes client (dev extra) is missing")
    from pydantic import ValidationError

    problems: list[str] = []
    for obj in [*rendered[overlay], _training_job(rendered[overlay])[1]]:
        kind, name = obj["kind"], obj["metadata"]["name"]
        assert obj["apiVersion"].rsplit("/", 1)[-1] == "v1", f"{kind} {name}: only stable v1 APIs are used"
        try:
            getattr(models, f"V1{kind}").model_validate(obj)
        except ValidationError as exc:
            problems.append(f"{kind}/{name}: {exc}")
    assert not problems, "\n".join(problems)
