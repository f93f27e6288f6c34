"""The calls the Kubernetes runner makes to the API server, through the official `kubernetes` client.

Objects go in and come out as the API's own JSON (plain dicts, camelCase), which is what
`k8s_status.observe` reads; responses are not turned into the client's models. Every call has a
timeout; a server that cannot be reached or refuses a call is an `Unavailable` naming it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracewheel.core.errors import ConfigError, Unavailable
from tracewheel.trainer.k8s_job import JOB_ID_ANNOTATION, JOB_ID_LABEL, MANAGED_SELECTOR

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0


def api_client(kubeconfig: Path | None) -> Any:
    """A `kubernetes.client.ApiClient` from a kubeconfig file, or the pod's service account when None.

    Raises:
        ConfigError: the kubeconfig cannot be read, or there is no service account (not in a cluster).
    """
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            config.load_kube_config(str(kubeconfig), client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
    except (ConfigException, OSError) as exc:
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "the in-cluster service account"
        problem = f"cannot configure the Kubernetes client from {where}: {exc}; see TW_TRAINER_KUBECONFIG"
        raise ConfigError(problem) from None
    return client.ApiClient(configuration)


class JobsApi:
    """batch/v1 Jobs and their pods in one namespace."""

    def __init__(self, client: Any, namespace: str) -> None:
        from kubernetes import client as k8s

        self.namespace = namespace
        self.host = client.configuration.host
        self._batch = k8s.BatchV1Api(client)
        self._core = k8s.CoreV1Api(client)

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """The JSON a call returns; None on 404.

        Raises:
            Unavailable: the server cannot be reached or refused the call (the message says which).
        """
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            response = method(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                return None
            detail = _status_message(exc.body) or exc.reason
            raise Unavailable(f"{what} in namespace {self.namespace} at {self.host}: {exc.status} {detail}") from None
        except HTTPError as exc:
            raise Unavailable(f"{what}: cannot reach the Kubernetes API server at {self.host}: {exc}") from None
        found: dict[str, Any] = json.loads(response.data)
        return found

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Creates a Job; one that exists already (a retried create) is returned as it is.

        Raises:
            Unavailable: the server refused the Job (e.g. 422 Invalid, 403 Forbidden) or cannot be reached.
        """
        from kubernetes.client.exceptions import ApiException

        name = manifest["metadata"]["name"]
        try:
            response = self._batch.create_namespaced_job(
                self.namespace, manifest, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S
            )
            created: dict[str, Any] = json.loads(response.data)
            return created
        except ApiException as exc:
            if exc.status != 409:
                detail = _status_message(exc.body) or exc.reason
                raise Unavailable(f"creating Job {name} at {self.host}: {exc.status} {detail}") from None
        existing = self.read(name)
        if existing is None:
            raise Unavailable(f"Job {name} exists and vanished at once; try again")
        return existing

    def read(self, name: str) -> dict[str, Any] | None:
        """The Job, or None when it does not exist."""
        return self._call(f"reading Job {name}", self._batch.read_namespaced_job, name, self.namespace)

    def list_managed(self) -> list[dict[str, Any]]:
        """Every Job a trainer created in the namespace (by the managed-by label)."""
        list_jobs = self._batch.list_namespaced_job
        found = self._call("listing Jobs", list_jobs, self.namespace, label_selector=MANAGED_SELECTOR)
        return list((found or {}).get("items") or [])

    def find(self, job_id: str) -> dict[str, Any] | None:
        """The Job that runs training job `job_id` (by the job id annotation), if one exists."""
        for item in self.list_managed():
            if (item.get("metadata", {}).get("annotations") or {}).get(JOB_ID_ANNOTATION) == job_id:
                return item
        return None

    def pods(self, job_id: str) -> list[dict[str, Any]]:
        """The pods of training job `job_id`'s Job (every retry's)."""
        selector = f"{JOB_ID_LABEL}={job_id}"
        found = self._call("listing pods", self._core.list_namespaced_pod, self.namespace, label_selector=selector)
        return list((found or {}).get("items") or [])

    def delete(self, name: str) -> None:
        """Deletes a Job and, in the background, its pods; a Job already gone is fine."""
        delete = self._batch.delete_namespaced_job
        self._call(f"deleting Job {name}", delete, name, self.namespace, propagation_policy="Background")

    def watch(self, name: str, resource_version: str, timeout_s: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """The Job's changes after `resource_version` as (type, object), for at most `timeout_s` seconds.

        Raises:
            Unavailable: the watch could not be opened.
        """
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        stream = watch.Watch().stream(
            self._batch.list_namespaced_job,
            self.namespace,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=timeout_s,
            _request_timeout=timeout_s + REQUEST_TIMEOUT_S,  # a server that never ends the watch
            deserialize=False,
        )
        try:
            for event in stream:
                yield event["type"], event["object"]
        except (ApiException, HTTPError) as exc:
            raise Unavailable(f"watching Job {name} at {self.host}: {exc}") from None

    def missing_claims(self, claims: list[str]) -> list[str]:
        """The PersistentVolumeClaims of `claims` that do not exist in the namespace."""
        read = self._core.read_namespaced_persistent_volume_claim
        return [claim for claim in claims if self._call(f"reading claim {claim}", read, claim, self.namespace) is None]


def _status_message(body: Any) -> str:
    """The `message` of a Kubernetes Status body, if the body is one."""
    try:
        return str(json.loads(body).get("message", ""))
    except (TypeError, ValueError, AttributeError):
        return ""
