"""Stand-ins for unit tests of the loop's control flow and for the overhead benchmark.

`ScriptedLLM` implements the one call the loop makes (`chat.completions.create`) and answers
with real `openai.types.chat.ChatCompletion` objects built from a script; `StaticToolSession`
answers every call instantly. Integration tests use the real inference service instead.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from openai.types.chat import ChatCompletion

from tracewheel.agent.tools import SessionLost, ToolOutput

_ids = itertools.count()

ScriptItem = dict[str, Any] | BaseException | Callable[[dict[str, Any]], Any]


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    """An OpenAI tool call (arguments given as a dict are JSON-encoded)."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": call_id or f"chatcmpl-tool-{next(_ids):08x}",
        "type": "function",
        "function": {"name": name, "arguments": raw},
    }


def assistant(
    content: str | None = None, *, tool_calls: Sequence[dict[str, Any]] = (), reasoning: str | None = None
) -> dict[str, Any]:
    """A model message as vLLM returns it (reasoning under both field names)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    if reasoning is not None:
        message["reasoning"] = reasoning
        message["reasoning_content"] = reasoning
    return message


def completion(message: dict[str, Any], *, prompt_tokens: int = 10, completion_tokens: int = 5) -> ChatCompletion:
    """A ChatCompletion with one choice holding `message`."""
    return ChatCompletion.model_validate(
        {
            "id": f"chatcmpl-{next(_ids):08x}",
            "object": "chat.completion",
            "created": 0,
            "model": "scripted",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


class _Completions:
    def __init__(self, owner: ScriptedLLM) -> None:
        self._owner = owner

    async def create(self, **kwargs: Any) -> ChatCompletion:
        return await self._owner.answer(kwargs)


class _Chat:
    def __init__(self, owner: ScriptedLLM) -> None:
        self.completions = _Completions(owner)


class ScriptedLLM:
    """Answers each request with the next script item: a message dict, an exception to raise,
    or a callable (of the request) returning either or an awaitable. `repeat_last` keeps
    answering with the last item once the script is spent.
    """

    def __init__(self, script: Iterable[ScriptItem], *, repeat_last: bool = False) -> None:
        self.script = list(script)
        self.repeat_last = repeat_last
        self.requests: list[dict[str, Any]] = []
        self.chat = _Chat(self)

    async def answer(self, request: dict[str, Any]) -> ChatCompletion:
        self.requests.append(copy.deepcopy(request))  # as sent: an HTTP client serializes it here
        index = len(self.requests) - 1
        if index >= len(self.script):
            if not self.repeat_last or not self.script:
                raise AssertionError(f"the script has {len(self.script)} answers; request {index + 1} came")
            index = len(self.script) - 1
        item = self.script[index]
        if callable(item) and not isinstance(item, BaseException):
            item = item(request)
            if inspect.isawaitable(item):
                item = await item
        if isinstance(item, BaseException):
            raise item
        return completion(item)


class StaticToolSession:
    """A ToolSession with fixed tools whose calls answer instantly.

    `answers` maps a tool name to its text (default: `ok`); calls are recorded in `calls`.
    Calls whose index (0-based) is in `lose_at` raise SessionLost.
    """

    def __init__(
        self,
        tool_names: Sequence[str] = ("browser_navigate", "browser_click"),
        *,
        answers: dict[str, str] | None = None,
    ) -> None:
        self.tools: list[dict[str, Any]] = [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": f"The {name} tool.",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
            for name in tool_names
        ]
        self.answers = answers or {}
        self.calls: list[tuple[str, str]] = []
        self.lose_at: set[int] = set()
        self.reopened = 0
        self.closed = False

    async def list_tools(self) -> list[dict[str, Any]]:
        return self.tools

    async def call_tool(self, name: str, arguments_json: str) -> ToolOutput:
        index = len(self.calls)
        self.calls.append((name, arguments_json))
        if index in self.lose_at:
            raise SessionLost("scripted session loss")
        if name not in {t["function"]["name"] for t in self.tools}:
            return ToolOutput(f"### Error\nUnknown tool {name!r}.", is_error=True)
        try:
            json.loads(arguments_json)
        except json.JSONDecodeError:
            return ToolOutput("### Error\nThe arguments are not valid JSON.", is_error=True)
        return ToolOutput(self.answers.get(name, "ok"))

    async def reopen(self) -> None:
        self.reopened += 1

    async def close(self) -> None:
        self.closed = True
