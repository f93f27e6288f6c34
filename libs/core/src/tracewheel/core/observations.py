"""The observation window: which tool results a model reads in full, and what it reads instead.

A browser agent reads a page snapshot after every call, and with every snapshot kept the
prompt grows by a whole page per step: the request and the calls made so far end up thousands
of tokens back, behind pages the model no longer acts on. With an observation window of N the
agent sends only the last N tool results in full; each earlier one is cut to its head, the text
before its first fenced block (for a browser result: the page's URL and title), and marked as
omitted. This is the observation masking of SWE-agent's history processors.

The trace keeps every result whole and records the window in `metadata.extra`
(`OBSERVATION_WINDOW_KEY`); the dataset service rebuilds each turn's prompt from it with the
same functions (unroll.py), so training rows hold exactly what was served. A windowed prompt
is no longer a prefix of the next turn's, which is why such a trace trains as one row per
turn, packed as a prefix tree (docs/dataset.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from tracewheel.core.errors import TraceValidationError
from tracewheel.core.trace import Message, Trace

OBSERVATION_WINDOW_KEY = "observation_window"
"""The `metadata.extra` key of the window a trace was run with (absent: every result in full)."""

OMITTED_MARKER = "[earlier result omitted]"
"""What ends a result outside the window, after its head."""

STUB_HEAD_CHARS = 300
"""Most characters of a result's head kept outside the window."""

FENCE = "```"


def observation_stub(text: str) -> str:
    """What the model reads of a tool result outside the window.

    The text before the first fenced block (a browser result's `### Page state` lines: URL and
    title), at most `STUB_HEAD_CHARS` characters of it, then `OMITTED_MARKER`. A short result
    without a fenced block (an error, "User rejected tool call.") is kept whole.
    """
    head = text.split(FENCE, 1)[0].rstrip()
    if head == text.rstrip() and len(head) <= STUB_HEAD_CHARS:
        return text
    head = head[:STUB_HEAD_CHARS].rstrip()
    return f"{head}\n{OMITTED_MARKER}" if head else OMITTED_MARKER


def outside_window(roles: Sequence[str], window: int) -> list[int]:
    """Indices of the tool results (role `tool`) read as stubs: all but the last `window` ones.

    A window of 0 keeps every result in full.
    """
    tools = [index for index, role in enumerate(roles) if role == "tool"]
    return tools[: max(len(tools) - window, 0)] if window > 0 else []


def windowed(messages: Sequence[Message], window: int) -> list[Message]:
    """The messages as a model with this observation window reads them (a prompt, not a trace)."""
    stubbed = set(outside_window([m.role for m in messages], window))
    return [
        m.model_copy(update={"content": observation_stub(m.content or "")}) if i in stubbed else m
        for i, m in enumerate(messages)
    ]


def observation_window(trace: Trace) -> int:
    """The observation window the trace was run with (0: every result read in full).

    Raises:
        TraceValidationError: the recorded window is not a non-negative integer.
    """
    raw = trace.metadata.extra.get(OBSERVATION_WINDOW_KEY, "0")
    if not raw.isdigit():
        raise TraceValidationError(
            [f"trace {trace.id}: metadata.extra.{OBSERVATION_WINDOW_KEY} must be an integer >= 0, got {raw!r}"]
        )
    return int(raw)
