"""The agent loop: model proposes tool calls, the tool session runs them, until a final answer.

The Trelis workshop loop, made robust:
- a final answer is an assistant message without tool calls; the run also stops at
  `max_steps` model turns or `time_limit_s` (`asyncio.timeout`: a run never hangs past it);
- output that should have been a tool call but did not parse (`<tool_call>` in the content,
  no `tool_calls` back, as vLLM's hermes parser degrades) is kept verbatim in
  `metadata.parse_errors` and the same messages are sent again (`parse_retries` times; not at
  temperature 0, where they bring the same output back); if it still does not parse, the run
  ends as failed (`unparsed_tool_call`): such content is no final answer, and a task's checker
  must not read one in it (a comparison's checker passes any text naming the cheaper item first);
- unknown tools and bad arguments go to the tool session, whose error result the model reads;
- an unreachable or failing (5xx/429) inference server is retried with exponential backoff,
  then the run ends with an `error` outcome and the trace so far;
- a lost tool session is reopened once; a second loss ends the run with an `error` outcome;
- with an approver, a rejected call answers "User rejected tool call." to the model.
- with `repeat_limit`, the same call (name and arguments) answered by the same result that many
  times in a row ends the run as failed (`repeated_call`) instead of at the step limit.

A run never raises for those: it always returns a Trace (which validates).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessage

from tracewheel.agent.conversation import Conversation, LoopOptions, clip_result
from tracewheel.agent.tools import SessionLost, ToolSession
from tracewheel.core.errors import InvalidArgument, Unavailable
from tracewheel.core.trace import Message, Outcome, Task, ToolCall, Trace, Verdict

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
_RETRIED_ERRORS = (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)

Approver = Callable[[ToolCall], bool | Awaitable[bool]]


@dataclass(frozen=True)
class AgentEvent:
    """A message added to the conversation: the model's turn or a tool's result."""

    step: int
    kind: Literal["assistant", "tool_result"]
    message: Message


EventSink = Callable[[AgentEvent], Awaitable[None] | None]


class InferenceFailed(Unavailable):
    """The model server could not answer (after retries) or refused the request."""


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _complete(run: Conversation, llm: openai.AsyncOpenAI) -> ChatCompletion:
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
            completion: ChatCompletion = await llm.chat.completions.create(**kwargs)
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


def _unparsed_call(message: ChatCompletionMessage | Message) -> bool:
    """Content that holds `<tool_call>` while no tool call came back parsed."""
    return not message.tool_calls and "<tool_call>" in (message.content or "")


async def _next_turn(run: Conversation, llm: openai.AsyncOpenAI) -> ChatCompletionMessage:
    """The model's next message; an unparsed tool call is recorded and asked for again (greedy
    decoding of the same messages would write it again: not at temperature 0)."""
    retries = 0 if run.config.temperature == 0 else run.config.parse_retries
    for _ in range(retries):
        message = (await _complete(run, llm)).choices[0].message
        if not _unparsed_call(message):
            return message
        run.parse_errors.append(message.content or "")
        logger.info("model output held an unparsed tool call; asking again")
    message = (await _complete(run, llm)).choices[0].message
    if _unparsed_call(message):
        run.parse_errors.append(message.content or "")
    return message


async def _call_tool(run: Conversation, call: ToolCall, tools: ToolSession, approver: Approver | None) -> str:
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


class _Repeats:
    """Counts one call (name, arguments) answered by one result, in a row."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._last: tuple[str, str, str] | None = None

    def seen(self, name: str, arguments: str, output: str) -> str | None:
        """Records a call and its result; says why the run is stuck when the limit is reached (a
        limit of 0 never is)."""
        key = (name, arguments, output)
        self.count = self.count + 1 if key == self._last else 1
        self._last = key
        if 0 < self.limit <= self.count:
            return f"{name} returned the same result {self.count} times in a row for the same arguments"
        return None


async def _loop(
    run: Conversation,
    llm: openai.AsyncOpenAI,
    tools: ToolSession,
    approver: Approver | None,
    on_event: EventSink | None,
) -> tuple[Outcome, str]:
    run.set_tools(await tools.list_tools())
    repeats = _Repeats(run.config.repeat_limit)
    for step in range(1, run.config.max_steps + 1):
        run.steps = step
        assistant = run.add_assistant(await _next_turn(run, llm))
        if on_event is not None:
            await _maybe_await(on_event(AgentEvent(step, "assistant", assistant)))
        if _unparsed_call(assistant):
            tries = len(run.parse_errors)
            detail = f"the model wrote a tool call that does not parse ({tries} {'try' if tries == 1 else 'tries'})"
            return Outcome(verdict=Verdict.FAILED, detail=detail), "unparsed_tool_call"
        if not assistant.tool_calls:
            return Outcome(final_answer=assistant.content or ""), "final_answer"
        for call in assistant.tool_calls:
            output = await _call_tool(run, call, tools, approver)
            result = run.add_tool_result(call, output)
            if on_event is not None:
                await _maybe_await(on_event(AgentEvent(step, "tool_result", result)))
            stuck = repeats.seen(call.function.name, run.raw_arguments[call.id], output)
            if stuck is not None:
                return Outcome(verdict=Verdict.FAILED, detail=stuck), "repeated_call"
    detail = f"max_steps ({run.config.max_steps}) reached without a final answer"
    return Outcome(verdict=Verdict.FAILED, detail=detail), "max_steps"


async def run_agent(
    prompt: str,
    *,
    llm: openai.AsyncOpenAI,
    model: str,
    tools: ToolSession,
    config: LoopOptions | None = None,
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
        config: limits, guidance and sampling; defaults to `LoopOptions()`.
        task: recorded in the trace.
        approver: asked before each tool call; False rejects it.
        on_event: told of each message added.
    """
    config = config or LoopOptions()
    run = Conversation(prompt, model, config, task)
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
    except Unavailable as exc:  # SessionLost twice, or no new session (also none free: ResourceExhausted)
        stop_reason = "tool_session_error"
        outcome = Outcome(verdict=Verdict.ERROR, detail=f"tool session failed: {exc}")
    except InvalidArgument as exc:  # the config's tool_arguments do not fit the session's tools
        stop_reason = "config_error"
        outcome = Outcome(verdict=Verdict.ERROR, detail=str(exc))
    logger.info("agent run stopped (%s) after %d steps", stop_reason, run.steps)
    return run.trace(outcome, time.perf_counter() - started, stop_reason)
