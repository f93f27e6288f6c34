"""The agent loop: model proposes tool calls, the tool session runs them, until a final answer.

The Trelis workshop loop, made robust:
- a final answer is an assistant message without tool calls; the run also stops at
  `max_steps` model turns or `time_limit_s` (`asyncio.timeout`: a run never hangs past it);
- output that should have been a tool call but did not parse (`<tool_call>` in the content,
  no `tool_calls` back, as vLLM's hermes parser degrades) is kept verbatim in
  `metadata.parse_errors` and the same messages are sent again (`parse_retries` times);
- unknown tools and bad arguments go to the tool session, whose error result the model reads;
- an unreachable or failing (5xx/429) inference server is retried with exponential backoff,
  then the run ends with an `error` outcome and the trace so far;
- a lost tool session is reopened once; a second loss ends the run with an `error` outcome;
- with an approver, a rejected call answers "User rejected tool call." to the model.

A run never raises for those: it always returns a Trace (which validates).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessage

from tracewheel.agent.tool_schemas import offered_tools
from tracewheel.agent.tools import SessionLost, ToolSession
from tracewheel.core.errors import InvalidArgument, Unavailable
from tracewheel.core.trace import Message, Outcome, Task, TokenUsage, Tool, ToolCall, Trace, TraceMetadata, Verdict

logger = logging.getLogger(__name__)

REJECTED_MESSAGE = "User rejected tool call."
SESSION_REOPENED_MESSAGE = (
    "### Error\nThe browser session was lost and a new one was opened; its pages are gone. Navigate again."
)
DEFAULT_GUIDANCE = (
    "You are a browser agent. Use the browser tools to find what the user asks for: navigate, read the page "
    "snapshot, click links by their ref. Call one tool at a time. When you know the answer, reply with it "
    "briefly and without calling a tool."
)
_TRUNCATION_MARKER = re.compile(r"\n\[\.\.\. truncated \d+ characters \.\.\.\]$")
_RETRIED_ERRORS = (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)

Approver = Callable[[ToolCall], bool | Awaitable[bool]]


@dataclass(frozen=True)
class AgentConfig:
    """How the agent runs one task.

    Attributes:
        max_steps: most model turns per run.
        time_limit_s: wall-clock limit of a run, tools and model included.
        result_char_limit: tool results longer than this are cut (keeping the head) and say so.
        tool_names: the tools offered to the model (None: all the session has).
        tool_arguments: per tool, the arguments offered (others left out of its schema; see tool_schemas.py).
        argument_descriptions: offer the descriptions of tool arguments (False: names and types only).
        guidance_prompt: a system prompt sent first (None: none).
        strip_guidance: leave the guidance prompt out of the trace (it is still named in metadata).
        temperature: sampling temperature (None: the server's default).
        max_tokens: most tokens per model turn (None: the server's default).
        enable_thinking: sent as `chat_template_kwargs.enable_thinking` (None: not sent).
        inference_attempts: tries per model turn when inference is unreachable or answers 5xx/429.
        retry_backoff_s: wait before the second try; doubled before each further one.
        parse_retries: how often an output with an unparsed `<tool_call>` is asked for again.
    """

    max_steps: int = 15
    time_limit_s: float = 300.0
    result_char_limit: int = 6000
    tool_names: tuple[str, ...] | None = None
    tool_arguments: Mapping[str, tuple[str, ...]] | None = None
    argument_descriptions: bool = True
    guidance_prompt: str | None = None
    strip_guidance: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    enable_thinking: bool | None = None
    inference_attempts: int = 3
    retry_backoff_s: float = 0.5
    parse_retries: int = 2


def offered_tools_of(tools: list[dict[str, Any]], config: AgentConfig) -> list[dict[str, Any]]:
    """The session's tools as `config` offers them to the model (see tool_schemas.offered_tools)."""
    return offered_tools(tools, config.tool_names, config.tool_arguments, config.argument_descriptions)


@dataclass(frozen=True)
class AgentEvent:
    """A message added to the conversation: the model's turn or a tool's result."""

    step: int
    kind: Literal["assistant", "tool_result"]
    message: Message


EventSink = Callable[[AgentEvent], Awaitable[None] | None]


class InferenceFailed(Unavailable):
    """The model server could not answer (after retries) or refused the request."""


def clip_result(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with a marker; text the gateway already cut stays as it is."""
    if limit <= 0 or len(text) <= limit:
        return text
    marker = _TRUNCATION_MARKER.search(text)
    if marker is not None and marker.start() <= limit:
        return text
    return f"{text[:limit]}\n[... truncated {len(text) - limit} characters ...]"


def new_trace_id() -> str:
    """`trace-<uuid4 hex>`."""
    return f"trace-{uuid.uuid4().hex}"


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _reasoning(message: ChatCompletionMessage) -> str | None:
    extra = message.model_extra or {}
    return extra.get("reasoning") or extra.get("reasoning_content") or None


def _arguments_object(raw: str) -> bool:
    try:
        return isinstance(json.loads(raw or "{}"), dict)
    except json.JSONDecodeError:
        return False


class _Run:
    """The growing conversation of one run, as trace messages and as API messages."""

    def __init__(self, prompt: str, model: str, config: AgentConfig, task: Task | None) -> None:
        self.config = config
        self.model = model
        self.task = task
        self.messages: list[Message] = []
        self.api_messages: list[dict[str, Any]] = []
        self.api_tools: list[dict[str, Any]] = []
        self.tool_names: frozenset[str] = frozenset()
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
            self.api_messages.append({"role": "system", "content": config.guidance_prompt})
            if not config.strip_guidance:
                self.messages.append(Message(role="system", content=config.guidance_prompt))
        self.api_messages.append({"role": "user", "content": prompt})
        self.messages.append(Message(role="user", content=prompt))

    def set_tools(self, tools: list[dict[str, Any]]) -> None:
        self.api_tools = offered_tools_of(tools, self.config)
        self.tool_names = frozenset(t["function"]["name"] for t in self.api_tools)

    def add_assistant(self, message: ChatCompletionMessage) -> Message:
        calls: list[ToolCall] = []
        seen: set[str] = set()
        for call in message.tool_calls or []:
            if call.type != "function":
                continue
            raw = call.function.arguments
            valid = _arguments_object(raw)
            self.tool_calls += 1
            self.invalid_tool_calls += not (valid and call.function.name in self.tool_names)
            call_id = call.id if call.id and call.id not in seen else f"chatcmpl-tool-{uuid.uuid4().hex}"
            seen.add(call_id)
            self.raw_arguments[call_id] = raw
            arguments = raw if valid else json.dumps({"_invalid_arguments": raw})
            calls.append(ToolCall(id=call_id, function={"name": call.function.name, "arguments": arguments}))
        reasoning = _reasoning(message)
        trace_message = Message(
            role="assistant", content=message.content, reasoning_content=reasoning, tool_calls=calls
        )
        api: dict[str, Any] = {"role": "assistant", "content": message.content}
        if calls:
            api["tool_calls"] = [c.model_dump() for c in calls]
        if reasoning:
            api["reasoning"] = reasoning
        self.messages.append(trace_message)
        self.api_messages.append(api)
        return trace_message

    def add_tool_result(self, call: ToolCall, text: str) -> Message:
        message = Message(role="tool", tool_call_id=call.id, name=call.function.name, content=text)
        self.messages.append(message)
        self.api_messages.append({"role": "tool", "tool_call_id": call.id, "name": call.function.name, "content": text})
        return message

    def add_usage(self, completion: ChatCompletion) -> None:
        if completion.usage is not None:
            self.usage.prompt_tokens += completion.usage.prompt_tokens
            self.usage.completion_tokens += completion.usage.completion_tokens

    def trace(self, outcome: Outcome, total_s: float, stop_reason: str) -> Trace:
        config = self.config
        metadata = TraceMetadata(
            guidance_prompt=config.guidance_prompt,
            guidance_stripped=bool(config.guidance_prompt) and config.strip_guidance,
            truncation_limit=config.result_char_limit,
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


async def _complete(run: _Run, llm: openai.AsyncOpenAI) -> ChatCompletion:
    config = run.config
    kwargs: dict[str, Any] = {"model": run.model, "messages": run.api_messages}
    if run.api_tools:
        kwargs["tools"] = run.api_tools
    if config.temperature is not None:
        kwargs["temperature"] = config.temperature
    if config.max_tokens is not None:
        kwargs["max_tokens"] = config.max_tokens
    if config.enable_thinking is not None:
        kwargs["extra_body"] = {"chat_template_kwargs": {"enable_thinking": config.enable_thinking}}
    last: Exception | None = None
    for attempt in range(max(1, config.inference_attempts)):
        if attempt:
            await asyncio.sleep(config.retry_backoff_s * 2 ** (attempt - 1))
        started = time.perf_counter()
        try:
            completion = await llm.chat.completions.create(**kwargs)
        except _RETRIED_ERRORS as exc:
            last = exc
            logger.warning("inference attempt %d/%d failed: %s", attempt + 1, config.inference_attempts, exc)
            continue
        except openai.APIStatusError as exc:
            raise InferenceFailed(f"inference refused the request (HTTP {exc.status_code}): {exc.message}") from exc
        finally:
            run.model_s += time.perf_counter() - started
        run.add_usage(completion)
        return completion
    raise InferenceFailed(f"inference failed after {config.inference_attempts} attempts: {last}")


async def _next_turn(run: _Run, llm: openai.AsyncOpenAI) -> ChatCompletionMessage:
    """The model's next message; an unparsed tool call is recorded and asked for again."""
    for _ in range(run.config.parse_retries):
        message = (await _complete(run, llm)).choices[0].message
        if message.tool_calls or "<tool_call>" not in (message.content or ""):
            return message
        run.parse_errors.append(message.content or "")
        logger.info("model output held an unparsed tool call; asking again")
    message = (await _complete(run, llm)).choices[0].message
    if not message.tool_calls and "<tool_call>" in (message.content or ""):
        run.parse_errors.append(message.content or "")
    return message


async def _call_tool(run: _Run, call: ToolCall, tools: ToolSession, approver: Approver | None) -> str:
    if approver is not None and not await _maybe_await(approver(call)):
        run.rejected += 1
        return REJECTED_MESSAGE
    started = time.perf_counter()
    try:
        output = await tools.call_tool(call.function.name, run.raw_arguments[call.id])
    except SessionLost:
        if run.reopened:
            raise
        run.reopened = True
        logger.warning("tool session lost during %s; reopening it once", call.function.name)
        await tools.reopen()
        return SESSION_REOPENED_MESSAGE
    finally:
        run.tools_s += time.perf_counter() - started
    return clip_result(output.text, run.config.result_char_limit)


async def _loop(
    run: _Run, llm: openai.AsyncOpenAI, tools: ToolSession, approver: Approver | None, on_event: EventSink | None
) -> tuple[Outcome, str]:
    run.set_tools(await tools.list_tools())
    for step in range(1, run.config.max_steps + 1):
        run.steps = step
        assistant = run.add_assistant(await _next_turn(run, llm))
        if on_event is not None:
            await _maybe_await(on_event(AgentEvent(step, "assistant", assistant)))
        if not assistant.tool_calls:
            return Outcome(final_answer=assistant.content or ""), "final_answer"
        for call in assistant.tool_calls:
            result = run.add_tool_result(call, await _call_tool(run, call, tools, approver))
            if on_event is not None:
                await _maybe_await(on_event(AgentEvent(step, "tool_result", result)))
    detail = f"max_steps ({run.config.max_steps}) reached without a final answer"
    return Outcome(verdict=Verdict.FAILED, detail=detail), "max_steps"


async def run_agent(
    prompt: str,
    *,
    llm: openai.AsyncOpenAI,
    model: str,
    tools: ToolSession,
    config: AgentConfig | None = None,
    task: Task | None = None,
    approver: Approver | None = None,
    on_event: EventSink | None = None,
) -> Trace:
    """Runs the agent on `prompt` until a final answer, `max_steps` or `time_limit_s`.

    The outcome is unchecked (`unspecified`, with the final answer) when the model answered,
    `failed` at a step or time limit, `error` when inference or the tool session failed; its
    `detail` says which. Checking an answer against a task is the caller's (see evaluation).

    Args:
        prompt: the user's request.
        llm: an OpenAI client on the inference server (give it `max_retries=0`: the loop retries).
        model: the served model name (alias or adapter).
        tools: the tool session to work in (not closed here).
        config: limits, guidance and sampling; defaults to `AgentConfig()`.
        task: recorded in the trace.
        approver: asked before each tool call; False rejects it.
        on_event: told of each message added.
    """
    config = config or AgentConfig()
    run = _Run(prompt, model, config, task)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(config.time_limit_s):
            outcome, stop_reason = await _loop(run, llm, tools, approver, on_event)
    except TimeoutError:
        stop_reason = "time_limit"
        outcome = Outcome(verdict=Verdict.FAILED, detail=f"time limit ({config.time_limit_s:g} s) reached")
    except InferenceFailed as exc:
        stop_reason = "inference_error"
        outcome = Outcome(verdict=Verdict.ERROR, detail=str(exc))
    except Unavailable as exc:  # SessionLost twice, or no new session
        stop_reason = "tool_session_error"
        outcome = Outcome(verdict=Verdict.ERROR, detail=f"tool session failed: {exc}")
    except InvalidArgument as exc:  # the config's tool_arguments do not fit the session's tools
        stop_reason = "config_error"
        outcome = Outcome(verdict=Verdict.ERROR, detail=str(exc))
    logger.info("agent run stopped (%s) after %d steps", stop_reason, run.steps)
    return run.trace(outcome, time.perf_counter() - started, stop_reason)
