"""A local stand-in for the Kubernetes API server's batch/v1 Job endpoints, enough for the official client.

It serves, in one namespace: POST/GET/LIST/WATCH/DELETE of Jobs, LIST of pods (label
selector) and GET of PersistentVolumeClaims, with resource versions, 404/409 Status bodies and
chunked watch streams. Nothing schedules pods by itself: a test plays the controller and the
kubelet through `FakeCluster` (set a Job's status, add a pod, delete a Job under the trainer),
or hands `kubelet=run_container`, which runs the Job's own container command as a local
subprocess and reports its end the way the Job controller would.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

Kubelet = Callable[["FakeCluster", dict[str, Any]], None]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _labels_match(selector: str, labels: dict[str, str]) -> bool:
    pairs = [term.split("=", 1) for term in selector.split(",") if term]
    return all(labels.get(key) == value for key, value in pairs)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeCluster:
    """The stand-in's state, its HTTP server, and the controls a test uses."""

    def __init__(self, namespace: str = "tracewheel", claims: tuple[str, ...] = (), kubelet: Kubelet | None = None):
        self.namespace = namespace
        self.claims = set(claims)
        self.kubelet = kubelet
        self.jobs: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.events: list[tuple[int, str, dict[str, Any]]] = []  # (resource version, type, Job)
        self.created: list[str] = []
        self.deleted: list[tuple[str, str]] = []  # (name, propagationPolicy)
        self.watched = threading.Event()  # set when a client opens a watch
        self._version = 0
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="k8s-standin", daemon=True)

    def __enter__(self) -> FakeCluster:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def kubeconfig(self) -> str:
        """A kubeconfig (YAML) that points the client at this server."""
        return self.kubeconfig_for(self.url)

    @staticmethod
    def kubeconfig_for(url: str) -> str:
        """A kubeconfig (YAML) that points the client at `url`."""
        return (
            "apiVersion: v1\nkind: Config\ncurrent-context: standin\n"
            f"clusters: [{{name: standin, cluster: {{server: '{url}'}}}}]\n"
            "users: [{name: standin, user: {token: standin}}]\n"
            "contexts: [{name: standin, context: {cluster: standin, user: standin}}]\n"
        )

    # the controller's and the kubelet's side, for tests

    def _record(self, kind: str, job: dict[str, Any]) -> None:
        """Bumps the version and wakes watchers. Call with `_changed` held."""
        self._version += 1
        job["metadata"]["resourceVersion"] = str(self._version)
        self.events.append((self._version, kind, copy.deepcopy(job)))
        self._changed.notify_all()

    def set_job_status(self, name: str, **status: Any) -> None:
        """Replaces fields of a Job's status (a MODIFIED event)."""
        with self._changed:
            job = self.jobs[name]
            job["status"] = {**job.get("status", {}), **status}
            self._record("MODIFIED", job)

    def set_pod(self, job_name: str, pod_name: str, status: dict[str, Any]) -> None:
        """Adds or replaces a pod of the Job, with the Job's pod labels."""
        with self._changed:
            labels = self.jobs[job_name]["spec"]["template"]["metadata"]["labels"]
            self._version += 1
            metadata = {
                "name": pod_name,
                "namespace": self.namespace,
                "labels": dict(labels),
                "creationTimestamp": _now(),
            }
            self.pods[pod_name] = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "status": status}

    def delete_job(self, name: str, policy: str = "") -> dict[str, Any] | None:
        """Deletes a Job and its pods (a DELETED event); None when there was none."""
        with self._changed:
            job = self.jobs.pop(name, None)
            if job is None:
                return None
            self.deleted.append((name, policy))
            labels = job["spec"]["template"]["metadata"]["labels"]
            for pod_name in [n for n, p in self.pods.items() if p["metadata"]["labels"] == labels]:
                del self.pods[pod_name]
            self._record("DELETED", job)
            return job

    # the API's side

    def create_job(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body["metadata"]["name"]
        with self._changed:
            if name in self.jobs:
                return 409, _status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
            job = copy.deepcopy(body)
            job["metadata"].update({"uid": str(uuid.uuid4()), "creationTimestamp": _now()})
            job["status"] = {}
            self.jobs[name] = job
            self.created.append(name)
            self._record("ADDED", job)
            created = copy.deepcopy(job)
        if self.kubelet is not None:
            threading.Thread(target=self.kubelet, args=(self, created), daemon=True).start()
        return 201, created

    def watch(self, name: str, since: int, timeout_s: float, write: Callable[[dict[str, Any]], None]) -> None:
        deadline = time.monotonic() + timeout_s
        self.watched.set()
        with self._changed:
            while True:
                fresh = [
                    (v, kind, job) for v, kind, job in self.events if v > since and job["metadata"]["name"] == name
                ]
                for version, kind, job in fresh:
                    since = version
                    self._changed.release()
                    try:
                        write({"type": kind, "object": job})
                    finally:
                        self._changed.acquire()
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)

    def list_pods(self, selector: str) -> list[dict[str, Any]]:
        with self._changed:
            return [copy.deepcopy(p) for p in self.pods.values() if _labels_match(selector, p["metadata"]["labels"])]

    def list_jobs(self, selector: str, name: str) -> dict[str, Any]:
        with self._changed:
            items = [
                copy.deepcopy(job)
                for job in self.jobs.values()
                if _labels_match(selector, job["metadata"].get("labels") or {})
                and (not name or job["metadata"]["name"] == name)
            ]
            return {
                "kind": "JobList",
                "apiVersion": "batch/v1",
                "metadata": {"resourceVersion": str(self._version)},
                "items": items,
            }


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    jobs_path = f"/apis/batch/v1/namespaces/{cluster.namespace}/jobs"
    core_path = f"/api/v1/namespaces/{cluster.namespace}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_POST(self) -> None:
            if urlparse(self.path).path != jobs_path:
                return self._send(404, _status(404, "NotFound", self.path))
            self._send(*cluster.create_job(self._body()))

        def do_DELETE(self) -> None:
            url = urlparse(self.path)
            name = url.path.removeprefix(jobs_path + "/")
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            policy = query.get("propagationPolicy") or self._body().get("propagationPolicy", "")
            job = cluster.delete_job(name, policy)
            if job is None:
                return self._send(404, _status(404, "NotFound", f'jobs.batch "{name}" not found'))
            self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            if url.path == jobs_path and query.get("watch") == "true":
                return self._watch(query)
            if url.path == jobs_path:
                name = query.get("fieldSelector", "").removeprefix("metadata.name=")
                return self._send(200, cluster.list_jobs(query.get("labelSelector", ""), name))
            if url.path.startswith(jobs_path + "/"):
                job = cluster.jobs.get(url.path.removeprefix(jobs_path + "/"))
                return self._send(200, job) if job else self._send(404, _status(404, "NotFound", "job not found"))
            if url.path == core_path + "/pods":
                items = cluster.list_pods(query.get("labelSelector", ""))
                return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
            claim = url.path.removeprefix(core_path + "/persistentvolumeclaims/")
            if claim in cluster.claims:
                return self._send(
                    200, {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "metadata": {"name": claim}}
                )
            self._send(404, _status(404, "NotFound", f"{url.path} not found"))

        def _watch(self, query: dict[str, str]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def write(event: dict[str, Any]) -> None:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()

            name = query.get("fieldSelector", "").removeprefix("metadata.name=")
            try:
                cluster.watch(
                    name, int(query.get("resourceVersion") or 0), float(query.get("timeoutSeconds", 5)), write
                )
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):  # the client stopped watching
                self.close_connection = True

    return Handler


def run_container(cluster: FakeCluster, job: dict[str, Any]) -> None:
    """The kubelet and the Job controller for one pod: runs the Job's container command here, as a
    subprocess, and ends the Job Complete or Failed (the log tail as the terminated message)."""
    name = job["metadata"]["name"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    command = [sys.executable if part == "python" else part for part in container["command"]] + container["args"]
    env = os.environ | {item["name"]: item["value"] for item in container.get("env", [])}
    pod = f"{name}-0"
    cluster.set_pod(name, pod, {"phase": "Running"})
    cluster.set_job_status(name, active=1, startTime=_now())
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    message = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
    terminated = {"exitCode": done.returncode, "reason": "Completed" if done.returncode == 0 else "Error"}
    if done.returncode != 0:
        terminated["message"] = message
    phase = "Succeeded" if done.returncode == 0 else "Failed"
    cluster.set_pod(
        name, pod, {"phase": phase, "containerStatuses": [{"name": "trainer", "state": {"terminated": terminated}}]}
    )
    if done.returncode == 0:
        condition = {"type": "Complete", "status": "True"}
        cluster.set_job_status(name, active=0, succeeded=1, conditions=[condition])
    else:
        condition = {
            "type": "Failed",
            "status": "True",
            "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit",
        }
        cluster.set_job_status(name, active=0, failed=1, conditions=[condition])
