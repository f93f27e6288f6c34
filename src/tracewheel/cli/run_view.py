"""How `tracewheel run` shows a task run: each step's reasoning (shortened), tool calls and
results, then the outcome and why the run stopped, in words; or each event as a JSON line."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.markup import escape

from tracewheel.core.trace import Trace
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.v1 import agent_pb2, trace_pb2

# The agent's stop reasons (the trace's metadata.extra["stop_reason"], set in
# tracewheel.agent.loop and .replay), in words.
STOP_REASONS = {
    "final_answer": "the model gave its final answer",
    # not a reason the agent records: a final answer that is empty (the output was all reasoning)
    "empty_answer": "the model ended without a tool call and without an answer (it wrote only reasoning)",
    "answer_at_limit": "the model answered when asked for its answer at the step limit",
    "max_steps": "the step limit was reached without a final answer (raise --max-steps)",
    "unparsed_tool_call": "the model wrote a tool call that does not parse, so there is no answer",
    "repeated_call": "the model kept making the same call and getting the same result",
    "time_limit": "the run's time limit was reached",
    "inference_error": "the inference service failed (see the outcome)",
    "tool_session_error": "the tool session (browser) failed (see the outcome)",
    "config_error": "the agent's tool settings do not fit the gateway's tools",
}

REASONING_CHARS = 160
CONTENT_CHARS = 300
ARGUMENT_CHARS = 200


def shorten(text: str | None, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def stop_words(trace: Trace) -> str:
    """Why the run of `trace` stopped, in words (an unknown reason as it is)."""
    reason = trace.metadata.extra.get("stop_reason", "")
    if reason == "final_answer" and not (trace.outcome and trace.outcome.final_answer):
        reason = "empty_answer"
    return STOP_REASONS.get(reason, reason or "not recorded")


def _message_json(message: trace_pb2.Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def finished_json(trace: Trace) -> dict[str, Any]:
    """The last JSON line of a run: the outcome, why it stopped, and the whole trace."""
    outcome = trace.outcome
    return {
        "event": "finished",
        "trace_id": trace.id,
        "verdict": outcome.verdict.value if outcome else "unspecified",
        "final_answer": outcome.final_answer if outcome else None,
        "detail": outcome.detail if outcome else "",
        "stop_reason": trace.metadata.extra.get("stop_reason", ""),
        "stopped": stop_words(trace),
        "trace": trace.model_dump(mode="json"),
    }


def event_json(event: agent_pb2.StepEvent) -> dict[str, Any]:
    """One StepEvent as a JSON Lines record."""
    kind = event.WhichOneof("kind")
    if kind == "finished":
        return finished_json(trace_from_proto(event.finished))
    if kind == "approval_needed":
        return {"event": kind, "step": event.step, "tool_call": MessageToDict(event.approval_needed)}
    assert kind is not None  # the agent sets one kind on every event
    return {"event": kind, "step": event.step, "message": _message_json(getattr(event, kind))}


def show_event(console: Console, event: agent_pb2.StepEvent) -> None:
    """One StepEvent for a person (approval prompts are the caller's)."""
    kind = event.WhichOneof("kind")
    if kind == "assistant":
        message = event.assistant
        console.print(f"[bold]step {event.step}[/bold]")
        if message.reasoning_content:
            console.print(f"  [dim]thinks: {escape(shorten(message.reasoning_content, REASONING_CHARS))}[/dim]")
        if message.content:
            console.print(f"  says: {escape(shorten(message.content, CONTENT_CHARS))}")
        for call in message.tool_calls:
            console.print(f"  -> {call.function.name}({escape(shorten(call.function.arguments, ARGUMENT_CHARS))})")
    elif kind == "tool_result":
        console.print(f"  <- {escape(shorten(event.tool_result.content, CONTENT_CHARS))}")
    elif kind == "finished":
        show_finished(console, trace_from_proto(event.finished))


def show_finished(console: Console, trace: Trace) -> None:
    """The trace id and answer, the checker's verdict, and why the run stopped."""
    outcome = trace.outcome
    answer = outcome.final_answer if outcome and outcome.final_answer else "(no answer)"
    console.print(f"trace {trace.id}: {escape(answer)}")
    if outcome is not None:
        detail = f" ({escape(shorten(outcome.detail, CONTENT_CHARS))})" if outcome.detail else ""
        console.print(f"outcome: {outcome.verdict.value}{detail}")
    steps = trace.metadata.extra.get("steps", "")
    after = f" after {steps} step{'' if steps == '1' else 's'}" if steps else ""
    console.print(f"stopped: {stop_words(trace)}{after}")
