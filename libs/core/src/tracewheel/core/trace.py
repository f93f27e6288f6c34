"""The Trace: one agent run or imported conversation, in OpenAI chat shapes.

Validation is strict where a wrong trace would poison training: roles, tool calls whose
arguments are JSON objects, tool messages that answer a call made earlier. Errors name the
message index (`messages[3].tool_calls[0].function.arguments: ...`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tracewheel.core.errors import TraceValidationError

Role = Literal["system", "user", "assistant", "tool"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunctionCall(_Model):
    name: str = Field(min_length=1)
    arguments: str = "{}"
    """The arguments exactly as the model wrote them: a JSON object, as a string."""

    @field_validator("arguments")
    @classmethod
    def _arguments_are_a_json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"must be a JSON object, got {type(parsed).__name__}")
        return value


class ToolCall(_Model):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Model):
    role: Role
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _fields_fit_the_role(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages carry tool_calls, not {self.role}")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.role != "tool" and self.tool_call_id is not None:
            raise ValueError("only tool messages carry tool_call_id")
        return self


class FunctionTool(_Model):
    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class Tool(_Model):
    type: Literal["function"] = "function"
    function: FunctionTool


class Task(_Model):
    suite: str = ""
    task_id: str = ""
    prompt: str = ""
    split: str = ""
    """The task's split in its suite: `train`, `heldout` (never trained on), or empty (not known)."""


class Verdict(StrEnum):
    UNSPECIFIED = "unspecified"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"


class Judgment(_Model):
    """What an LLM judge was asked and answered, kept so a person can audit the verdict."""

    model: str = ""
    base_url: str = ""
    prompt: str = ""
    """Everything sent: the system instructions with the rubric, then the user turn."""
    answer: str = ""
    """The judge's reply as it came (empty when the endpoint did not answer)."""
    verdict: Verdict = Verdict.UNSPECIFIED
    score: float = 0.0
    reason: str = ""


class Outcome(_Model):
    verdict: Verdict = Verdict.UNSPECIFIED
    score: float = 0.0
    final_answer: str | None = None
    detail: str = ""
    judgments: list[Judgment] = Field(default_factory=list)


class TokenUsage(_Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class TraceMetadata(_Model):
    guidance_prompt: str | None = None
    guidance_stripped: bool = False
    truncation_limit: int = 0
    timings_s: dict[str, float] = Field(default_factory=dict)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    source: str = ""
    parse_errors: list[str] = Field(default_factory=list)
    rejected_tool_calls: int = 0
    extra: dict[str, str] = Field(default_factory=dict)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Trace(_Model):
    id: str = Field(min_length=1)
    created_at: datetime = Field(default_factory=_utc_now)
    model: str = ""
    tools: list[Tool] = Field(default_factory=list)
    messages: list[Message] = Field(min_length=1)
    task: Task | None = None
    outcome: Outcome | None = None
    metadata: TraceMetadata = Field(default_factory=TraceMetadata)

    @field_validator("created_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        # proto Timestamps are UTC instants; naive times are read as UTC so both sides agree.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _tool_messages_answer_earlier_calls(self) -> Trace:
        problems = conversation_problems(self.messages)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def conversation_problems(messages: list[Message]) -> list[str]:
    """Checks the order of a conversation: every tool message answers an open tool call."""
    problems: list[str] = []
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        if message.role == "assistant":
            ids = [call.id for call in message.tool_calls]
            if len(set(ids)) != len(ids):
                problems.append(f"messages[{index}].tool_calls: duplicate tool call ids {ids}")
            open_calls = set(ids)
        elif message.role == "tool":
            if message.tool_call_id not in open_calls:
                problems.append(
                    f"messages[{index}]: tool message answers tool_call_id "
                    f"{message.tool_call_id!r}, which no earlier assistant message called"
                )
            open_calls.discard(message.tool_call_id or "")
        else:
            open_calls = set()
    return problems


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "trace"


def validate_trace(data: dict[str, Any]) -> Trace:
    """Builds a Trace from plain data.

    Raises:
        TraceValidationError: naming each bad field, with the message index.
    """
    try:
        return Trace.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            message = error["msg"].removeprefix("Value error, ")
            if not error["loc"]:  # whole-trace checks already name their locations
                problems.extend(message.split("; "))
                continue
            problems.append(f"{_location(tuple(error['loc']))}: {message}")
        raise TraceValidationError(problems) from None


def parse_trace_json(text: str | bytes) -> Trace:
    """Parses a JSON document into a Trace.

    Raises:
        TraceValidationError: the text is not UTF-8 JSON, not an object, or not a valid trace.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceValidationError([f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]) from None
    except UnicodeDecodeError as exc:  # bytes json.loads cannot decode (it detects UTF-8/16/32)
        raise TraceValidationError([f"not valid UTF-8: byte {exc.start}"]) from None
    if not isinstance(data, dict):
        raise TraceValidationError([f"a trace is a JSON object, got {type(data).__name__}"])
    return validate_trace(data)
