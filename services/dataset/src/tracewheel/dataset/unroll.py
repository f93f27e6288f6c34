"""Unrolling traces into training rows.

The chat template keeps an assistant turn's reasoning only when the turn comes after the last
user query of the rendered conversation. So a multi-query trace rendered whole would train its
earlier answers without their reasoning. `unroll_at_user_turns` makes one row per user query:
the conversation up to the last assistant turn answering that query, with loss only on the
assistant turns after the query. Each row's targets follow its last user query, so all their
reasoning is rendered; every assistant turn is a target in exactly one row.

Assistant turns before the first user query answer no query (a scripted greeting): they are
kept as context, never trained. Tool results render as user turns in the template, but they
are not queries: they never start a row.

A trace run with an observation window (`tracewheel.core.observations`) was served a different
prompt at every turn: results that had dropped out of the window were read as stubs. Its rows
are the prompts as served, one per assistant turn (`unroll_windowed`), each with loss on its
last turn only; the build packs a trace's rows into one prefix tree (pack.py), so their
shared tokens are trained once.

`unroll_per_assistant_turn` is the Trelis workshop recipe, kept as the benchmark baseline:
one row per assistant turn with loss on every assistant turn in it, so early turns are trained
many times and, after a later user query, without their reasoning.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict

from tracewheel.core.observations import observation_window, windowed
from tracewheel.core.trace import Message, Tool, Trace


class TrainingRow(BaseModel):
    """A conversation prefix and the indices of the assistant messages that carry loss."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trace_id: str
    tools: list[Tool]
    messages: list[Message]
    targets: list[int]
    """Indices into `messages` of the assistant messages trained on, ascending."""
    window: int = 0
    """The observation window the row's messages were cut with (0: the trace's messages as they are)."""

    def content_key(self) -> str:
        """A hash of what the row trains (tools, messages, targets), not where it came from."""
        canonical = json.dumps(
            self.model_dump(mode="json", include={"tools", "messages", "targets"}), sort_keys=True, ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def last_user_index(messages: list[Message]) -> int:
    """The index of the last user message, or -1 when there is none."""
    return next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), -1)


def reasoning_rendered(messages: list[Message], index: int) -> bool:
    """Whether the template renders the reasoning of the assistant turn at `index` in `messages`.

    It does for assistant turns after the last user query (Qwen3 and the project template).
    """
    return messages[index].role == "assistant" and index > last_user_index(messages)


def _row(trace: Trace, end: int, targets: list[int]) -> TrainingRow:
    return TrainingRow(trace_id=trace.id, tools=trace.tools, messages=trace.messages[:end], targets=targets)


def unroll_at_user_turns(trace: Trace) -> list[TrainingRow]:
    """One row per answered user query, with loss on that query's assistant turns only.

    A row runs from the start of the trace (system and guidance messages included) to the last
    assistant turn before the next user query; a query with no assistant turn after it (a
    trailing question) makes no row.
    """
    rows: list[TrainingRow] = []
    targets: list[int] = []
    in_query = False
    for index, message in enumerate(trace.messages):
        if message.role == "user":
            if targets:
                rows.append(_row(trace, targets[-1] + 1, targets))
            targets, in_query = [], True
        elif message.role == "assistant" and in_query:
            targets.append(index)
    if targets:
        rows.append(_row(trace, targets[-1] + 1, targets))
    return rows


def unroll_windowed(trace: Trace, window: int) -> list[TrainingRow]:
    """One row per assistant turn answering a user query: the prompt as served with this
    observation window, then the turn, with loss on that turn only."""
    rows: list[TrainingRow] = []
    answered = False
    for index, message in enumerate(trace.messages):
        answered = answered or message.role == "user"
        if message.role == "assistant" and answered:
            messages = [*windowed(trace.messages[:index], window), message]
            rows.append(
                TrainingRow(trace_id=trace.id, tools=trace.tools, messages=messages, targets=[index], window=window)
            )
    return rows


def unroll(trace: Trace) -> list[TrainingRow]:
    """The trace's training rows: per turn as served when it was run with an observation window,
    else one row per user query (`unroll_at_user_turns`).

    Raises:
        TraceValidationError: the trace records an observation window that is not an integer >= 0.
    """
    window = observation_window(trace)
    return unroll_windowed(trace, window) if window else unroll_at_user_turns(trace)


def without_reasoning(row: TrainingRow) -> TrainingRow:
    """The row with its assistant turns' reasoning left out (the model learns to act without thinking).

    Rendered with tracewheel's templates, an assistant turn without reasoning gets an empty
    `<think>` block before its content and tool calls: the text a model served with thinking
    disabled (`enable_thinking: false`) produces after its prompt's empty block.
    """
    messages = [
        m.model_copy(update={"reasoning_content": None}) if m.role == "assistant" and m.reasoning_content else m
        for m in row.messages
    ]
    return row.model_copy(update={"messages": messages})


def unroll_per_assistant_turn(trace: Trace) -> list[TrainingRow]:
    """The naive baseline: one row per assistant turn, ending at it, with loss on every assistant turn in it."""
    rows: list[TrainingRow] = []
    targets: list[int] = []
    for index, message in enumerate(trace.messages):
        if message.role == "assistant":
            targets = [*targets, index]
            rows.append(_row(trace, index + 1, targets))
    return rows
