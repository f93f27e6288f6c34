"""One size limit for a trace, the same on every path (agent, capture, import, REST, gRPC, NATS).

A trace's size is the length of its JSON form (UTF-8), the form a person sees in a file. It is
checked before anything is sent; NATS's `max_payload` and gRPC's message limits are set to
`wire_limit(limit)`, so a trace under the limit always fits the wire it travels on (its protobuf
is not larger than 1.5x its JSON: tool schemas travel as JSON text with spaces).

A trace over the limit is refused with `TraceTooLarge` and written to `<home>/rejected/` by
`keep_rejected`, so a person can read, trim and import it again: nothing is lost, and the
traces after it are handled as usual.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tracewheel.core.errors import ConfigError, InvalidArgument
from tracewheel.core.trace import Trace

log = logging.getLogger(__name__)

MAX_TRACE_BYTES_VARIABLE = "TRACEWHEEL_MAX_TRACE_BYTES"
DEFAULT_MAX_TRACE_BYTES = 4 * 1024 * 1024  # a 16k-token agent run is ~100 KB; room for long tool results
REJECTED_DIR = "rejected"
_WIRE_HEADROOM = 64 * 1024  # event envelope, headers, a request's other fields


class TraceTooLarge(InvalidArgument):
    """A trace over the size limit. Carries both figures so callers can say them."""

    def __init__(self, trace_id: str, size: int, limit: int) -> None:
        super().__init__(
            f"trace {trace_id!r} is {size} bytes as JSON, over the limit of {limit} bytes "
            f"({MAX_TRACE_BYTES_VARIABLE}); trim its tool results or raise the limit on every service"
        )
        self.trace_id = trace_id
        self.size = size
        self.limit = limit


def configured_max_trace_bytes(env: Mapping[str, str] | None = None) -> int:
    """The limit a process outside the services uses (the CLI, the local supervisor):
    TRACEWHEEL_MAX_TRACE_BYTES from `env` (default: the process environment), else the default.

    Raises:
        ConfigError: the variable is not a whole number of bytes.
    """
    value = (os.environ if env is None else env).get(MAX_TRACE_BYTES_VARIABLE, "")
    if not value:
        return DEFAULT_MAX_TRACE_BYTES
    if not value.isdigit():
        raise ConfigError(f"{MAX_TRACE_BYTES_VARIABLE}={value!r} is not a number of bytes")
    return int(value)


def wire_limit(max_trace_bytes: int) -> int:
    """The message size NATS and gRPC must carry for traces up to `max_trace_bytes`."""
    return max_trace_bytes + max_trace_bytes // 2 + _WIRE_HEADROOM


def trace_json(trace: Trace) -> str:
    """The trace's JSON form, whose length is its size."""
    return trace.model_dump_json(exclude_none=True)


def trace_size(trace: Trace) -> int:
    """The trace's size in bytes: its JSON form in UTF-8."""
    return len(trace_json(trace).encode("utf-8"))


def check_trace_size(trace: Trace, limit: int) -> int:
    """Returns the trace's size when it is within `limit`.

    Raises:
        TraceTooLarge: the trace is larger than `limit` bytes.
    """
    size = trace_size(trace)
    if size > limit:
        raise TraceTooLarge(trace.id, size, limit)
    return size


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[:120] or "trace"


def keep_rejected(home: Path, name: str, content: Trace | str | bytes | dict[str, Any], reason: str) -> Path:
    """Writes a refused trace, as it came, to `<home>/rejected/<time>-<name>-<hex>.json` with the
    reason beside it (`.reason.txt`), for a person to read; returns the file written.

    Raises:
        OSError: the folder cannot be written.
    """
    if isinstance(content, Trace):
        data = trace_json(content).encode("utf-8")
    elif isinstance(content, dict):
        data = json.dumps(content, ensure_ascii=False).encode("utf-8")
    else:
        data = content.encode("utf-8") if isinstance(content, str) else content
    folder = home / REJECTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{_file_name(name)}-{secrets.token_hex(3)}"
    target = folder / f"{stem}.json"
    target.write_bytes(data)  # bytes as they came: a file with invalid UTF-8 stays as it was
    (folder / f"{stem}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    log.warning("kept refused trace %s in %s: %s", name, target, reason)
    return target
