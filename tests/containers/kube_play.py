"""A rendered kustomize overlay turned into what `podman kube play` (podman 4.3) runs, and played.

Podman runs Deployments, Pods, ConfigMaps (env and volumes), PersistentVolumeClaims (as named
volumes) and secretKeyRef/secretRef env (from podman secrets); it has no API server, scheduler,
cluster DNS or kube-proxy. `translate` keeps what it runs as rendered and changes only this:

- dropped: Namespace, ServiceAccount, Role, RoleBinding (no API server to call), NetworkPolicy
  (no policy engine on a podman network), PodDisruptionBudget (no evictions), and Service (no
  virtual IPs or cluster DNS: each Service's name becomes a network alias of the pods it selects,
  so `nats:4222` or `agent:50053` resolve through the network's DNS as they do in a cluster);
- a StatefulSet becomes one Pod per replica named `<name>-<i>`, with the alias
  `<name>-<i>.<serviceName>` (its stable DNS name) and a claim `<template>-<name>-<i>` per
  volumeClaimTemplate, as the StatefulSet controller would create;
- a projected volume whose sources are ConfigMaps becomes one ConfigMap volume holding all their
  keys (podman has no projected volumes);
- each claim gets `volume.podman.io/uid`/`gid` from the pods mounting it (runAsUser, fsGroup),
  which podman does not apply to volumes itself;
- `commands` sets a container's command where the played image differs from the manifest's
  (NATS runs from a service image's nats-server: its image has another entrypoint).

Podman itself ignores readiness and startup probes (and runs no liveness probe without
systemd), strategy, terminationGracePeriodSeconds, lifecycle hooks, seccompProfile and affinity;
`readiness` lists the readiness probes so a caller can poll them.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DROPPED_KINDS = {
    "Namespace": "podman has no namespaces",
    "ServiceAccount": "no API server to authenticate to",
    "Role": "no API server to authorize against",
    "RoleBinding": "no API server to authorize against",
    "NetworkPolicy": "no policy engine on a podman network",
    "PodDisruptionBudget": "no evictions",
    "Service": "no virtual IPs or cluster DNS: its name is a network alias of the pods it selects",
}
Object = dict[str, Any]


@dataclass(frozen=True)
class Probe:
    """A container's readiness probe: gRPC health or an HTTP GET on `port`."""

    container: str
    kind: str  # "grpc" or "http"
    port: int
    path: str = ""


@dataclass
class PodPlan:
    """One pod: the file `podman kube play` gets (its workload and the ConfigMaps it reads)."""

    name: str  # the pod podman creates: "<deployment>-pod-0" or "<statefulset>-<i>"
    documents: list[Object]
    aliases: list[str]
    readiness: list[Probe]


@dataclass
class PlayPlan:
    """Claims to create first, then the pods; what was dropped or rewritten, for the docs."""

    claims: list[Object] = field(default_factory=list)
    pods: list[PodPlan] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)


def render(overlay: Path, images: Mapping[str, tuple[str, str]]) -> list[Object]:
    """The overlay rendered with `kubectl kustomize`, `images` ({name: (newName, newTag)})
    overriding its images through a kustomization of its own.

    Raises:
        RuntimeError: kubectl is missing or the overlay does not render.
    """
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl not on PATH: the overlay cannot be rendered")
    with tempfile.TemporaryDirectory() as folder:
        overrides = [{"name": name, "newName": new, "newTag": tag} for name, (new, tag) in images.items()]
        kustomization = {"resources": [os.path.relpath(overlay.resolve(), folder)], "images": overrides}
        (Path(folder) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        result = subprocess.run([kubectl, "kustomize", folder], capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed: {result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def translate(objects: list[Object], commands: Mapping[str, list[str]] | None = None) -> PlayPlan:
    """The plan `play` runs; see the module's docstring for every change.

    Raises:
        ValueError: a kind this translation does not know (neither played nor dropped).
    """
    plan = PlayPlan()
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    services = [o for o in objects if o["kind"] == "Service"]
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in DROPPED_KINDS:
            plan.dropped.append(f"{kind}/{name}: {DROPPED_KINDS[kind]}")
        elif kind == "PersistentVolumeClaim":
            plan.claims.append(obj)
        elif kind == "Deployment":
            pod = copy.deepcopy(obj)
            plan.pods.append(_pod_plan(f"{name}-pod-0", pod, services, config_maps, commands or {}, plan))
        elif kind == "StatefulSet":
            plan.rewritten.append(f"StatefulSet/{name}: one Pod per replica ({obj['spec']['replicas']})")
            for pod, claims in _stateful_pods(obj):
                plan.claims.extend(claims)
                plan.pods.append(_pod_plan(pod["metadata"]["name"], pod, services, config_maps, commands or {}, plan))
        elif kind != "ConfigMap":
            raise ValueError(f"{kind}/{name}: not known to the podman translation (play it or drop it there)")
    _own_claims(plan)
    return plan


def _stateful_pods(statefulset: Object) -> list[tuple[Object, list[Object]]]:
    """Pods `<name>-<i>` with the claims of their volumeClaimTemplates, as the controller makes them."""
    name, spec = statefulset["metadata"]["name"], statefulset["spec"]
    namespace = statefulset["metadata"].get("namespace")
    result = []
    for index in range(spec.get("replicas", 1)):
        pod_name = f"{name}-{index}"
        template = copy.deepcopy(spec["template"])
        pod_spec = template["spec"] | {"hostname": pod_name, "subdomain": spec["serviceName"]}
        claims = []
        for claim_template in spec.get("volumeClaimTemplates", []):
            claim = copy.deepcopy(claim_template)
            claim_name = f"{claim['metadata']['name']}-{pod_name}"
            claim |= {"apiVersion": "v1", "kind": "PersistentVolumeClaim"}
            claim["metadata"] = claim["metadata"] | {"name": claim_name, "namespace": namespace}
            claims.append(claim)
            volume = {"name": claim_template["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}}
            pod_spec["volumes"] = [*pod_spec.get("volumes", []), volume]
        metadata = {"name": pod_name, "namespace": namespace, "labels": template["metadata"].get("labels", {})}
        result.append(({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}, claims))
    return result


def _pod_spec(workload: Object) -> Object:
    return workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]


def _volumes(pod: PodPlan) -> list[Object]:
    return _pod_spec(pod.documents[-1]).get("volumes", [])


def _labels(workload: Object) -> dict[str, str]:
    if workload["kind"] == "Pod":
        return workload["metadata"].get("labels", {})
    return workload["spec"]["template"]["metadata"].get("labels", {})


def _pod_plan(
    pod_name: str,
    workload: Object,
    services: list[Object],
    config_maps: Mapping[str, Object],
    commands: Mapping[str, list[str]],
    plan: PlayPlan,
) -> PodPlan:
    """The workload with its projected volumes merged and `commands` set, the ConfigMaps it reads,
    the Service names selecting it (and a StatefulSet pod's stable name) as aliases."""
    spec, labels = _pod_spec(workload), _labels(workload)
    extra_maps = _merge_projected(pod_name, spec, config_maps, plan)
    readiness = [probe for container in spec["containers"] if (probe := _readiness(container))]
    for container in spec["containers"]:
        # podman 4.3 publishes a containerPort without hostPort on the host at the same number
        if container.pop("ports", None):
            plan.rewritten.append(f"{pod_name}/{container['name']}: ports not published on the host")
        if container["name"] in commands:
            container["command"] = commands[container["name"]]
            plan.rewritten.append(f"{pod_name}/{container['name']}: command {commands[container['name']]}")
    aliases = [s["metadata"]["name"] for s in services if _selects(s, labels)]
    if "subdomain" in spec:
        aliases.insert(0, f"{spec['hostname']}.{spec['subdomain']}")
    used = _config_maps_used(spec)
    documents = [config_maps[name] for name in sorted(used) if name in config_maps] + extra_maps + [workload]
    return PodPlan(pod_name, documents, aliases, readiness)


def _selects(service: Object, labels: Mapping[str, str]) -> bool:
    selector = service["spec"].get("selector") or {}
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _merge_projected(pod_name: str, spec: Object, config_maps: Mapping[str, Object], plan: PlayPlan) -> list[Object]:
    """Projected volumes of ConfigMaps become one ConfigMap volume each (podman has no projected volumes).

    Raises:
        ValueError: a projected source other than a ConfigMap.
    """
    merged = []
    for volume in spec.get("volumes", []):
        if "projected" not in volume:
            continue
        data: dict[str, str] = {}
        for source in volume.pop("projected")["sources"]:
            if set(source) != {"configMap"}:
                raise ValueError(f"{pod_name}: projected volume {volume['name']} has a source podman cannot play")
            data |= config_maps[source["configMap"]["name"]]["data"]
        name = f"{pod_name}-{volume['name']}-projected"
        merged.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
        volume["configMap"] = {"name": name}
        plan.rewritten.append(f"{pod_name}: projected volume {volume['name']} -> ConfigMap {name}")
    return merged


def _config_maps_used(spec: Object) -> set[str]:
    names = {v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
    for container in spec["containers"]:
        names |= {e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e}
        for env in container.get("env", []):
            if "configMapKeyRef" in env.get("valueFrom", {}):
                names.add(env["valueFrom"]["configMapKeyRef"]["name"])
    return names


def _readiness(container: Object) -> Probe | None:
    probe = container.get("readinessProbe")
    if probe is None:
        return None
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    if "grpc" in probe:
        return Probe(container["name"], "grpc", int(probe["grpc"]["port"]))
    port = probe["httpGet"]["port"]
    return Probe(
        container["name"], "http", ports[port] if isinstance(port, str) else int(port), probe["httpGet"]["path"]
    )


def _own_claims(plan: PlayPlan) -> None:
    """Claims owned by the uid/gid of the pods mounting them (podman applies no fsGroup)."""
    owners: dict[str, tuple[int, int]] = {}
    for pod in plan.pods:
        spec = _pod_spec(pod.documents[-1])
        context = spec.get("securityContext", {})
        if "runAsUser" not in context:
            continue
        owner = (context["runAsUser"], context.get("fsGroup", context.get("runAsGroup", context["runAsUser"])))
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                owners[volume["persistentVolumeClaim"]["claimName"]] = owner
    for claim in plan.claims:
        uid, gid = owners.get(claim["metadata"]["name"], (0, 0))
        annotations = claim["metadata"].setdefault("annotations", {})
        annotations |= {"volume.podman.io/uid": str(uid), "volume.podman.io/gid": str(gid)}


def podman_secret(data: Mapping[str, str]) -> bytes:
    """A Kubernetes Secret's data in the form podman 4.3's kube play reads from a podman secret
    (a JSON object of base64 values, not a Secret manifest)."""
    return json.dumps({key: base64.b64encode(value.encode()).decode() for key, value in data.items()}).encode()


@dataclass
class Played:
    """Pods played on one podman network; `address` reaches a pod from this machine (rootful
    podman routes the network's subnet to the host)."""

    plan: PlayPlan
    network: str
    folder: Path

    def container(self, pod: PodPlan) -> str:
        return f"{pod.name}-{_pod_spec(pod.documents[-1])['containers'][0]['name']}"

    def ip(self, pod: PodPlan) -> str:
        template = f'{{{{(index .NetworkSettings.Networks "{self.network}").IPAddress}}}}'
        return podman("inspect", "--format", template, self.container(pod)).strip()

    def pod(self, name: str) -> PodPlan:
        return next(pod for pod in self.plan.pods if pod.name == name)

    def logs(self, pod: PodPlan, lines: int = 40) -> str:
        result = subprocess.run(
            ["podman", "logs", "--tail", str(lines), self.container(pod)], capture_output=True, text=True, check=False
        )
        return result.stdout + result.stderr


def podman(*args: str, stdin: bytes | None = None) -> str:
    """Runs podman; its stdout.

    Raises:
        RuntimeError: podman failed (its stderr in the message).
    """
    result = subprocess.run(["podman", *args], input=stdin, capture_output=True, timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed: {result.stderr.decode(errors='replace')[-2000:]}")
    return result.stdout.decode()


def play(played: Played, secrets: Mapping[str, Mapping[str, str]]) -> None:
    """Creates the network, the podman secrets, the claims' volumes, then plays every pod, each
    with its aliases. Call `tear_down` afterwards, also when this raises.

    Raises:
        RuntimeError: a podman step failed.
    """
    plan, folder, network = played.plan, played.folder, played.network
    leftovers = tear_down(played, secrets)  # of a run killed before its teardown: the names are fixed
    if leftovers:
        raise RuntimeError("leftovers of an earlier run could not be removed:\n" + "\n".join(leftovers))
    podman("network", "create", network)
    for name, data in secrets.items():
        podman("secret", "create", name, "-", stdin=podman_secret(data))
    claims = folder / "claims.yaml"
    claims.write_text(yaml.safe_dump_all(plan.claims))
    podman("kube", "play", "--network", network, str(claims))
    for pod in plan.pods:
        path = folder / f"{pod.name}.yaml"
        path.write_text(yaml.safe_dump_all(pod.documents))
        aliases = ",".join(f"alias={alias}" for alias in pod.aliases)
        podman("kube", "play", "--network", f"{network}:{aliases}" if aliases else network, str(path))


def tear_down(played: Played, secrets: Mapping[str, object]) -> list[str]:
    """Removes the pods (`podman kube down`, their emptyDirs with them; `pod rm` where this run
    never played one), the claims' volumes, the secrets and the network, each step even when an
    earlier one failed; what could not be removed."""
    steps = []
    for pod in played.plan.pods:
        path = played.folder / f"{pod.name}.yaml"
        steps.append(("kube", "down", str(path)) if path.exists() else ("pod", "rm", "--force", "--ignore", pod.name))
    volumes = [claim["metadata"]["name"] for claim in played.plan.claims]
    # a ConfigMap volume is a named volume of the map's name, which kube down leaves behind
    volumes += sorted({v["configMap"]["name"] for p in played.plan.pods for v in _volumes(p) if "configMap" in v})
    steps += [("volume", "rm", "--force", name) for name in volumes]
    steps += [("secret", "rm", name) for name in secrets]
    steps.append(("network", "rm", "--force", played.network))
    problems = []
    for step in steps:
        try:
            podman(*step)
        except RuntimeError as error:
            if "no such" not in str(error).lower():
                problems.append(str(error))
    return problems
