"""Lossless conversion between the Trace model and tracewheel.v1.Trace."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any, Literal

from google.protobuf.timestamp_pb2 import Timestamp

from tracewheel.core.errors import TraceValidationError
from tracewheel.core.trace import (
    Judgment,
    Message,
    Outcome,
    Task,
    TokenUsage,
    Trace,
    TraceMetadata,
    Verdict,
    validate_trace,
)
from tracewheel.v1 import trace_pb2

_VERDICT_TO_PROTO = {
    Verdict.UNSPECIFIED: trace_pb2.VERDICT_UNSPECIFIED,
    Verdict.PASSED: trace_pb2.VERDICT_PASSED,
    Verdict.FAILED: trace_pb2.VERDICT_FAILED,
    Verdict.ERROR: trace_pb2.VERDICT_ERROR,
}
_VERDICT_FROM_PROTO = {value: key for key, value in _VERDICT_TO_PROTO.items()}
_OPTIONAL_MESSAGE_FIELDS: tuple[Literal["content", "reasoning_content", "tool_call_id", "name"], ...] = (
    "content",
    "reasoning_content",
    "tool_call_id",
    "name",
)


def message_to_proto(message: Message) -> trace_pb2.Message:
    out = trace_pb2.Message(role=message.role)
    for field in _OPTIONAL_MESSAGE_FIELDS:
        value = getattr(message, field)
        if value is not None:
            setattr(out, field, value)
    for call in message.tool_calls:
        out.tool_calls.add(
            id=call.id,
            type=call.type,
            function=trace_pb2.FunctionCall(name=call.function.name, arguments=call.function.arguments),
        )
    return out


def _message_from_proto(message: trace_pb2.Message) -> dict[str, Any]:
    # Plain data, validated once by validate_trace so errors name the message index.
    data: dict[str, Any] = {f: getattr(message, f) for f in _OPTIONAL_MESSAGE_FIELDS if message.HasField(f)}
    data["role"] = message.role
    data["tool_calls"] = [
        {
            "id": c.id,
            "type": c.type or "function",
            "function": {"name": c.function.name, "arguments": c.function.arguments},
        }
        for c in message.tool_calls
    ]
    return data


def _metadata_to_proto(metadata: TraceMetadata) -> trace_pb2.TraceMetadata:
    out = trace_pb2.TraceMetadata(
        guidance_stripped=metadata.guidance_stripped,
        truncation_limit=metadata.truncation_limit,
        timings_s=metadata.timings_s,
        usage=trace_pb2.TokenUsage(**metadata.usage.model_dump()),
        source=metadata.source,
        parse_errors=metadata.parse_errors,
        rejected_tool_calls=metadata.rejected_tool_calls,
        extra=metadata.extra,
    )
    if metadata.guidance_prompt is not None:
        out.guidance_prompt = metadata.guidance_prompt
    return out


def _metadata_from_proto(metadata: trace_pb2.TraceMetadata) -> TraceMetadata:
    return TraceMetadata(
        guidance_prompt=metadata.guidance_prompt if metadata.HasField("guidance_prompt") else None,
        guidance_stripped=metadata.guidance_stripped,
        truncation_limit=metadata.truncation_limit,
        timings_s=dict(metadata.timings_s),
        usage=TokenUsage(
            prompt_tokens=metadata.usage.prompt_tokens, completion_tokens=metadata.usage.completion_tokens
        ),
        source=metadata.source,
        parse_errors=list(metadata.parse_errors),
        rejected_tool_calls=metadata.rejected_tool_calls,
        extra=dict(metadata.extra),
    )


def trace_to_proto(trace: Trace) -> trace_pb2.Trace:
    created_at = Timestamp()
    created_at.FromDatetime(trace.created_at)
    out = trace_pb2.Trace(
        id=trace.id,
        created_at=created_at,
        model=trace.model,
        messages=[message_to_proto(m) for m in trace.messages],
        metadata=_metadata_to_proto(trace.metadata),
    )
    for tool in trace.tools:
        out.tools.add(
            type=tool.type,
            function=trace_pb2.FunctionTool(
                name=tool.function.name,
                description=tool.function.description,
                parameters_json=json.dumps(tool.function.parameters, ensure_ascii=False),
            ),
        )
    if trace.task is not None:
        out.task.CopyFrom(trace_pb2.Task(**trace.task.model_dump()))
    if trace.outcome is not None:
        outcome = trace_pb2.Outcome(
            verdict=_VERDICT_TO_PROTO[trace.outcome.verdict], score=trace.outcome.score, detail=trace.outcome.detail
        )
        if trace.outcome.final_answer is not None:
            outcome.final_answer = trace.outcome.final_answer
        for judgment in trace.outcome.judgments:
            outcome.judgments.add(**{**judgment.model_dump(), "verdict": _VERDICT_TO_PROTO[judgment.verdict]})
        out.outcome.CopyFrom(outcome)
    return out


def _judgment_from_proto(judgment: trace_pb2.Judgment) -> Judgment:
    return Judgment(
        model=judgment.model,
        base_url=judgment.base_url,
        prompt=judgment.prompt,
        answer=judgment.answer,
        verdict=_VERDICT_FROM_PROTO[judgment.verdict],
        score=judgment.score,
        reason=judgment.reason,
    )


def trace_from_proto(message: trace_pb2.Trace) -> Trace:
    """Builds a validated Trace from its proto.

    Raises:
        TraceValidationError: the proto holds an invalid trace (e.g. arguments that are not JSON).
    """
    tools = []
    for index, tool in enumerate(message.tools):
        try:
            parameters = json.loads(tool.function.parameters_json) if tool.function.parameters_json else {}
        except json.JSONDecodeError as exc:
            raise TraceValidationError(
                [f"tools[{index}].function.parameters_json: not valid JSON ({exc.msg})"]
            ) from None
        tools.append(
            {
                "type": tool.type or "function",
                "function": {
                    "name": tool.function.name,
                    "description": tool.function.description,
                    "parameters": parameters,
                },
            }
        )
    data: dict[str, Any] = {
        "id": message.id,
        "created_at": message.created_at.ToDatetime(tzinfo=UTC),
        "model": message.model,
        "tools": tools,
        "messages": [_message_from_proto(m) for m in message.messages],
        "metadata": _metadata_from_proto(message.metadata).model_dump(),
    }
    if message.HasField("task"):
        data["task"] = Task(
            suite=message.task.suite,
            task_id=message.task.task_id,
            prompt=message.task.prompt,
            split=message.task.split,
        ).model_dump()
    if message.HasField("outcome"):
        data["outcome"] = Outcome(
            verdict=_VERDICT_FROM_PROTO[message.outcome.verdict],
            score=message.outcome.score,
            final_answer=message.outcome.final_answer if message.outcome.HasField("final_answer") else None,
            detail=message.outcome.detail,
            judgments=[_judgment_from_proto(j) for j in message.outcome.judgments],
        ).model_dump()
    return validate_trace(data)
