"""Exit codes a script can use, and the one stderr line a failure prints (mapped here, once).

- 0: success;
- 1: the command ran and the answer is "no": an evaluation below `--min-success`, a training
  job that did not succeed, import items rejected, no stack running;
- 2: usage: a bad argument, an unknown id or version, a stale revision (argparse's own errors
  are 2 too);
- 3: the service was unreachable, refused the call (no or wrong token) or failed;
- 130: interrupted (Ctrl-C or SIGTERM); the work was cancelled on the server too.
"""

from __future__ import annotations

import grpc

from tracewheel.cli.endpoints import ENV, TOKEN_ENV, last_target
from tracewheel.core.errors import ConfigError, TracewheelError

OK = 0
NO = 1
USAGE = 2
SERVICE = 3
INTERRUPTED = 130

Code = grpc.StatusCode

# what was asked cannot be done as asked: the caller fixes the input
_USAGE_CODES = {
    Code.INVALID_ARGUMENT,
    Code.NOT_FOUND,
    Code.ALREADY_EXISTS,
    Code.FAILED_PRECONDITION,
    Code.ABORTED,
    Code.OUT_OF_RANGE,
}

_HINTS = {
    Code.UNAVAILABLE: "is it running? start the stack with `tracewheel up`, or point --address or {env} at it",
    Code.UNAUTHENTICATED: f"set {TOKEN_ENV} to the service's token",
    Code.PERMISSION_DENIED: f"set {TOKEN_ENV} to a token that may make this call",
    Code.NOT_FOUND: "check the id or name (`tracewheel traces list`, `dataset list` and `models` list them)",
    Code.ABORTED: "`tracewheel traces show ID` gives its current revision",
    Code.INVALID_ARGUMENT: "see the command's --help",
    Code.DEADLINE_EXCEEDED: "give it more time (--timeout) or try again later",
    Code.RESOURCE_EXHAUSTED: "the service is busy; try again later",
    Code.INTERNAL: "the service's log says more ($TRACEWHEEL_HOME/logs, or `tracewheel up`'s output)",
    Code.UNKNOWN: "the service's log says more ($TRACEWHEEL_HOME/logs, or `tracewheel up`'s output)",
    Code.UNIMPLEMENTED: "the service is older than this CLI; update it",
}


def exit_code(code: grpc.StatusCode) -> int:
    """The exit code of a command that failed with gRPC status `code`."""
    return USAGE if code in _USAGE_CODES else SERVICE


def _one_line(text: str) -> str:
    return " ".join(text.split())


def rpc_failure(error: grpc.RpcError) -> tuple[int, str]:
    """The exit code and the stderr line for a failed gRPC call (the service and address it went to)."""
    code, details = error.code(), _one_line(error.details() or "")
    target = last_target()
    where = f"the {target.service} service at {target.address}" if target else "the service"
    if code == Code.UNAVAILABLE and "connect" in details.lower():
        problem = f"{where} is unreachable"
    elif code in (Code.UNAUTHENTICATED, Code.PERMISSION_DENIED):
        problem = f"{where} refused the call: {details}"
    else:
        problem = f"{where} answered {code.name}: {details}"
    hint = _HINTS.get(code, "")
    if target is not None:
        hint = hint.replace("{env}", ENV.get(target.service, "the environment variable"))
    return exit_code(code), f"error: {problem}" + (f"; {hint}" if hint else "")


def local_failure(error: TracewheelError | OSError) -> tuple[int, str]:
    """The exit code and the stderr line for a failure found in the CLI itself (a missing file, a bad
    setting: usage errors) or raised by code it runs in-process."""
    if isinstance(error, OSError):
        return USAGE, f"error: {error.strerror or error}: {error.filename}" if error.filename else f"error: {error}"
    code = USAGE if isinstance(error, ConfigError) else exit_code(grpc.StatusCode[error.grpc_code_name])
    return code, f"error: {_one_line(str(error))}"
