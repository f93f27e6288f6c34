"""One agent run's options and its growing conversation (trace messages and API messages).

`loop.py` drives a run; this module holds what a run accumulates: the messages in both forms,
token usage, timings and counters, and the trace built from them at the end.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import jsonschema
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tracewheel.agent.tool_schemas import TASK_TOOLS, offered_tools
from tracewheel.core.chat import as_written, openai_message
from tracewheel.core.observations import OBSERVATION_WINDOW_KEY, observation_stub, outside_window
from tracewheel.core.trace import Message, Outcome, Task, TokenUsage, Tool, ToolCall, Trace, TraceMetadata

_TRUNCATION_MARKER = re.compile(r"\n\[\.\.\. truncated \d+ characters \.\.\.\]$")


class LoopOptions(BaseModel):
    """How the agent runs one task: every option of the loop, declared here once.

    The agent service's settings inherit these fields (`config.AgentSettings`), so each one is
    also the environment variable `TW_AGENT_<NAME>` (lists and objects as JSON).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_steps: int = Field(default=15, ge=1, description="Most model turns per run.")
    time_limit_s: float = Field(default=300.0, gt=0, description="Wall-clock limit of a run, tools and model included.")
    result_char_limit: int = Field(
        default=6000,
        ge=0,
        description="Tool results longer than this are cut (keeping the head) and say so (0: never).",
    )
    tools: tuple[str, ...] = Field(
        default=TASK_TOOLS, description="The tools offered to the model (empty: every tool the session has)."
    )
    tool_arguments: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description='Per tool, the arguments offered (e.g. {"browser_click": ["element", "ref"]}); a tool not '
        "named offers all; required arguments must be listed (tool_schemas.py).",
    )
    argument_descriptions: bool = Field(
        default=True, description="Offer the descriptions of tool arguments (false: names and types only)."
    )
    guidance_prompt: str | None = Field(default=None, description="A system prompt sent first (none by default).")
    strip_guidance: bool = Field(
        default=False, description="Leave the guidance prompt out of the trace (it is still named in metadata)."
    )
    temperature: float | None = Field(default=None, ge=0.0, description="Sampling temperature (unset: the server's).")
    max_tokens: int | None = Field(default=None, ge=1, description="Most tokens per model turn (unset: the server's).")
    enable_thinking: bool | None = Field(
        default=None, description="Sent as chat_template_kwargs.enable_thinking (unset: not sent)."
    )
    inference_attempts: int = Field(
        default=3, ge=1, description="Tries per model turn when inference is unreachable or answers 5xx/429."
    )
    retry_backoff_s: float = Field(
        default=0.5, ge=0, description="Wait before the second try of a model turn; doubled before each further one."
    )
    parse_retries: int = Field(
        default=2,
        ge=0,
        description="How often an output with an unparsed <tool_call> is asked for again (not at temperature 0: "
        "the same messages would bring the same output back); one that still does not parse fails the run.",
    )
    task_reminder: bool = Field(
        default=False,
        description="End every tool result with the user's request (TASK_REMINDER), so the request sits next to "
        "each decision; the trace keeps the results as the model read them, so rows train on what runs see.",
    )
    observation_window: int = Field(
        default=0,
        ge=0,
        description="Send only the last N tool results in full, earlier ones cut to their head "
        "(tracewheel.core.observations; 0: all in full); the trace keeps every result whole and records N.",
    )
    repeat_limit: int = Field(
        default=0,
        ge=0,
        description="End a run (failed, repeated_call) when the same call returns the same result this many times "
        "in a row: greedy decoding of a grown copy of the same context goes round again (0: never).",
    )

    @model_validator(mode="after")
    def _arguments_of_offered_tools(self) -> LoopOptions:
        unknown = sorted(set(self.tool_arguments) - set(self.tools))
        if unknown and self.tools:
            raise ValueError(f"tool_arguments names tools that are not in tools: {', '.join(unknown)}")
        return self


TASK_REMINDER = "\n\nTask: "
"""What `task_reminder` puts between a tool's result and the user's request."""


def with_reminder(text: str, prompt: str, config: LoopOptions) -> str:
    """A tool's result (already cut) as the model reads it: with `task_reminder`, the request after it."""
    return f"{text}{TASK_REMINDER}{prompt}" if config.task_reminder else text


def trace_metadata(config: LoopOptions, *, extra: dict[str, str], **fields: Any) -> TraceMetadata:
    """A trace's metadata: what `config` implies for every trace (agent runs and replays alike:
    guidance, cut, reminder), then the run's own `fields` and `extra`."""
    if config.task_reminder:
        extra = {**extra, "task_reminder": "true"}
    if config.observation_window:
        extra = {**extra, OBSERVATION_WINDOW_KEY: str(config.observation_window)}
    return TraceMetadata(
        guidance_prompt=config.guidance_prompt,
        guidance_stripped=bool(config.guidance_prompt) and config.strip_guidance,
        truncation_limit=config.result_char_limit,
        extra=extra,
        **fields,
    )


def clip_result(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with a marker; text the gateway already cut stays as it is."""
    if limit <= 0 or len(text) <= limit:
        return text
    marker = _TRUNCATION_MARKER.search(text)
    if marker is not None and marker.start() <= limit:
        return text
    return f"{text[:limit]}\n[... truncated {len(text) - limit} characters ...]"


def offered_tools_of(tools: list[dict[str, Any]], config: LoopOptions) -> list[dict[str, Any]]:
    """The session's tools as `config` offers them to the model (see tool_schemas.offered_tools)."""
    return offered_tools(tools, config.tools or None, config.tool_arguments, config.argument_descriptions)


def new_trace_id() -> str:
    """`trace-<uuid4 hex>`."""
    return f"trace-{uuid.uuid4().hex}"


def _reasoning(message: ChatCompletionMessage) -> str | None:
    extra = message.model_extra or {}
    return extra.get("reasoning") or extra.get("reasoning_content") or None


def _arguments_object(raw: str) -> dict[str, Any] | None:
    """The arguments as a JSON object; None when they are not one."""
    try:
        arguments = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return None
    return arguments if isinstance(arguments, dict) else None


def _validator(parameters: Any) -> Any:
    """A JSON Schema validator of a tool's parameters; None when the schema itself is unusable."""
    if not isinstance(parameters, dict):
        return None
    cls = jsonschema.validators.validator_for(parameters)
    try:
        cls.check_schema(parameters)
    except jsonschema.SchemaError:
        return None
    return cls(parameters)


class Conversation:
    """The growing conversation of one run, as trace messages and as API messages."""

    def __init__(self, prompt: str, model: str, config: LoopOptions, task: Task | None) -> None:
        self.config = config
        self.model = model
        self.task = task
        self.prompt = prompt
        self.messages: list[Message] = []
        self.api_messages: list[dict[str, Any]] = []
        self.api_tools: list[dict[str, Any]] = []
        self.tool_names: frozenset[str] = frozenset()
        self._validators: dict[str, Any] = {}
        self.usage = TokenUsage()
        self.parse_errors: list[str] = []
        self.rejected = 0
        self.tool_calls = 0
        self.invalid_tool_calls = 0
        self.model_s = 0.0
        self.tools_s = 0.0
        self.steps = 0
        self.reopened = False
        self.raw_arguments: dict[str, str] = {}
        """Arguments exactly as the model wrote them, by call id (the trace keeps valid JSON only)."""
        if config.guidance_prompt:
            guidance = Message(role="system", content=config.guidance_prompt)
            self.api_messages.append(openai_message(guidance))
            if not config.strip_guidance:
                self.messages.append(guidance)
        self.add_user(prompt)

    def add_user(self, text: str) -> Message:
        message = Message(role="user", content=text)
        self.messages.append(message)
        self.api_messages.append(openai_message(message))
        return message

    def set_tools(self, tools: list[dict[str, Any]]) -> None:
        self.api_tools = offered_tools_of(tools, self.config)
        self.tool_names = frozenset(t["function"]["name"] for t in self.api_tools)
        self._validators = {t["function"]["name"]: _validator(t["function"].get("parameters")) for t in self.api_tools}

    def valid_call(self, name: str, arguments: dict[str, Any] | None) -> bool:
        """Whether a call names an offered tool with arguments its parameter schema (as offered)
        accepts: the required ones there, of the declared types."""
        if arguments is None or name not in self.tool_names:
            return False
        validator = self._validators.get(name)
        return validator is None or validator.is_valid(arguments)

    def add_assistant(self, message: ChatCompletionMessage) -> Message:
        calls: list[ToolCall] = []
        seen: set[str] = set()
        for call in message.tool_calls or []:
            if call.type != "function":
                continue
            raw = call.function.arguments
            parsed = _arguments_object(raw)
            self.tool_calls += 1
            self.invalid_tool_calls += not self.valid_call(call.function.name, parsed)
            call_id = call.id if call.id and call.id not in seen else f"chatcmpl-tool-{uuid.uuid4().hex}"
            seen.add(call_id)
            self.raw_arguments[call_id] = raw
            arguments = raw if parsed is not None else json.dumps({"_invalid_arguments": raw})
            calls.append(ToolCall(id=call_id, function={"name": call.function.name, "arguments": arguments}))
        reasoning = _reasoning(message)
        trace_message = Message(
            role="assistant", content=message.content, reasoning_content=reasoning, tool_calls=calls
        )
        self.messages.append(trace_message)
        # clients send reasoning back under the name newer vLLM reads (traces keep reasoning_content);
        # the content as written before the calls, as training rows render it (docs/inference-parsing.md)
        self.api_messages.append(openai_message(as_written(trace_message), reasoning_key="reasoning"))
        return trace_message

    def add_tool_result(self, call: ToolCall, text: str) -> Message:
        """Adds a tool's result (or the loop's message in its place) as the model reads it."""
        text = with_reminder(text, self.prompt, self.config)
        message = Message(role="tool", tool_call_id=call.id, name=call.function.name, content=text)
        self.messages.append(message)
        self.api_messages.append(openai_message(message))
        self._apply_window()
        return message

    def _apply_window(self) -> None:
        """Cuts the API's tool results outside the observation window to stubs (the trace keeps them whole)."""
        offset = len(self.api_messages) - len(self.messages)  # a guidance prompt left out of the trace
        for index in outside_window([m.role for m in self.messages], self.config.observation_window):
            self.api_messages[index + offset]["content"] = observation_stub(self.messages[index].content or "")

    def add_usage(self, completion: ChatCompletion) -> None:
        if completion.usage is not None:
            self.usage.prompt_tokens += completion.usage.prompt_tokens
            self.usage.completion_tokens += completion.usage.completion_tokens

    def trace(self, outcome: Outcome, total_s: float, stop_reason: str) -> Trace:
        config = self.config
        metadata = trace_metadata(
            config,
            timings_s={"total": total_s, "model": self.model_s, "tools": self.tools_s},
            usage=self.usage,
            source="agent",
            parse_errors=self.parse_errors,
            rejected_tool_calls=self.rejected,
            extra={
                "stop_reason": stop_reason,
                "steps": str(self.steps),
                "tool_calls": str(self.tool_calls),
                "invalid_tool_calls": str(self.invalid_tool_calls),
            },
        )
        keys = ("name", "description", "parameters")
        tools = [Tool(function={k: t["function"][k] for k in keys if k in t["function"]}) for t in self.api_tools]
        return Trace(
            id=new_trace_id(),
            model=self.model,
            tools=tools,
            messages=self.messages,
            task=self.task,
            outcome=outcome,
            metadata=metadata,
        )
