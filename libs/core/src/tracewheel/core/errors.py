"""Typed domain errors. Servers map them to gRPC status codes / HTTP codes in one place."""

from __future__ import annotations


class TracewheelError(Exception):
    """Base of every error a service reports to its callers on purpose."""

    grpc_code_name = "INTERNAL"
    http_status = 500


class InvalidArgument(TracewheelError):
    grpc_code_name = "INVALID_ARGUMENT"
    http_status = 400


class NotFound(TracewheelError):
    grpc_code_name = "NOT_FOUND"
    http_status = 404


class Conflict(TracewheelError):
    """The request was based on a stale state (e.g. an edit of an old revision)."""

    grpc_code_name = "ABORTED"
    http_status = 409


class FailedPrecondition(TracewheelError):
    grpc_code_name = "FAILED_PRECONDITION"
    http_status = 400


class Unavailable(TracewheelError):
    """A dependency is down; retrying later may succeed."""

    grpc_code_name = "UNAVAILABLE"
    http_status = 503


class ResourceExhausted(Unavailable):
    """A capacity limit is reached (every slot taken); retrying once one frees up may succeed.
    An Unavailable with its own status, so callers that retry on Unavailable still do."""

    grpc_code_name = "RESOURCE_EXHAUSTED"
    http_status = 429


class DeadlineExceeded(TracewheelError):
    """Something did not finish in the time it was given."""

    grpc_code_name = "DEADLINE_EXCEEDED"
    http_status = 504


class ConfigError(TracewheelError):
    """A setting is missing, unknown or invalid; the service must not start."""


class TraceValidationError(InvalidArgument):
    """A trace is malformed. `problems` lists each as 'location: what is wrong'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid trace: " + "; ".join(problems))
