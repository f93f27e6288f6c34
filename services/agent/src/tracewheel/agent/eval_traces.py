"""Reading an evaluation run's trace back from the files `events.EvalTraceFiles` writes (domain).

Evaluation traces are Trelis files at `<directory>/<model>/<suite>/<trace id>.json`; they are
never published, so the console asks the agent for one (gRPC `GetEvalTrace`) to show why a
held-out task was won or lost. The id is a file name here: anything but a plain name is refused
before the file system is touched, so a request cannot read outside the directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from tracewheel.core.errors import InvalidArgument, NotFound
from tracewheel.core.trace import Trace
from tracewheel.core.trelis import read_trelis_file

_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
"""Letters, digits, `.`, `_`, `-`, not starting with a dot (agent ids are `trace-<hex>`)."""


def check_trace_id(trace_id: str) -> None:
    """Refuses an id that is not a safe file name.

    Raises:
        InvalidArgument: empty, longer than 200 characters, or holding anything but letters,
            digits, `.`, `_` and `-` (a leading dot included).
    """
    if not _SAFE_ID.fullmatch(trace_id):
        raise InvalidArgument(
            f"trace id {trace_id[:80]!r} is not a trace file name: letters, digits, '.', '_' and '-' only"
        )


def find_eval_trace(directory: Path | None, trace_id: str) -> Trace:
    """The evaluation trace `trace_id` under `directory` (the newest file if several models wrote it).

    Raises:
        InvalidArgument: the id is not a safe file name (`check_trace_id`).
        NotFound: no evaluation trace has that id (or no directory is configured).
        TraceValidationError: the file is there but does not hold a valid trace (names the file).
    """
    check_trace_id(trace_id)
    if directory is None:
        raise NotFound("this agent service reads no evaluation trace folder (TW_AGENT_EVAL_TRACE_DIR)")
    found = sorted(directory.glob(f"*/*/{trace_id}.json"), key=lambda path: path.stat().st_mtime)
    if not found:
        raise NotFound(f"no evaluation trace {trace_id!r} under {directory}")
    return read_trelis_file(found[-1])
