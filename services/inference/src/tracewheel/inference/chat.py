"""Chat requests: validation and prompt building, in the shapes of vLLM's OpenAI server.

Everything here is plain Python over dicts and the tokenizer, so it is tested without a
server. Bad requests raise `InvalidArgument` with a message naming the field and index; the
HTTP layer turns that into a 400 with an OpenAI-style error body.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field

from tracewheel.core.errors import InvalidArgument
from tracewheel.inference.engine import SamplingParams

ROLES = ("system", "developer", "user", "assistant", "tool")
EMPTY_THINK = "<think>\n\n</think>\n\n"
SEED_RANGE = (-(2**63), 2**63 - 1)  # what a torch generator takes (vLLM's bound too)
# apply_chat_template's own arguments: in chat_template_kwargs they would clash with ours or change
# what is returned, so they are refused rather than passed on (chat_template is the request's template)
RESERVED_TEMPLATE_KWARGS = frozenset(
    {
        "conversation",
        "tools",
        "documents",
        "add_generation_prompt",
        "continue_final_message",
        "tokenize",
        "sanitize_control_tokens",
        "padding",
        "truncation",
        "max_length",
        "return_tensors",
        "return_dict",
        "return_assistant_tokens_mask",
        "tokenizer_kwargs",
    }
)


class ChatCompletionRequest(BaseModel):
    """The fields of `POST /v1/chat/completions` we honour (unknown ones are ignored, as vLLM does)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    n: int = 1
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    chat_template: str | None = None  # used only when the server trusts request templates

    def sampling(self, max_tokens: int) -> SamplingParams:
        """The sampler's parameters, with `max_tokens` from `token_budget`."""
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            stop=stop,
            seed=self.seed,
        )

    @property
    def enable_thinking(self) -> bool:
        return bool((self.chat_template_kwargs or {}).get("enable_thinking", True))

    @property
    def include_usage_in_stream(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage", False))


def _text(content: Any, where: str) -> str | None:
    """Message content as text: a string, None, or a list of text parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise InvalidArgument(f"{where}.content[{i}]: only text parts are supported")
            parts.append(part["text"])
        return "".join(parts)
    raise InvalidArgument(f"{where}.content: expected a string or a list of text parts")


def _tool_calls(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    calls = []
    for j, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not call.get("id"):
            raise InvalidArgument(f"{where}.tool_calls[{j}]: needs id and function.name")
        arguments = function.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append(
            {"id": call["id"], "type": "function", "function": {"name": function["name"], "arguments": arguments}}
        )
    return calls


def normalize_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checks roles and tool-call pairing and returns messages in the template's shape.

    Raises:
        InvalidArgument: an unknown role, bad content, or a tool message whose
            tool_call_id no earlier assistant message called.
    """
    out: list[dict[str, Any]] = []
    called: set[str] = set()
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role")
        if role not in ROLES:
            raise InvalidArgument(f"{where}.role: unknown role {role!r}; expected one of {', '.join(ROLES)}")
        item: dict[str, Any] = {
            "role": "system" if role == "developer" else role,
            "content": _text(message.get("content"), where),
        }
        if role == "assistant":
            # clients send reasoning back as `reasoning` (new vLLM) or `reasoning_content` (old)
            reasoning = message.get("reasoning", message.get("reasoning_content"))
            if reasoning is not None:
                item["reasoning_content"] = reasoning
            item["tool_calls"] = _tool_calls(message, where)
            called |= {call["id"] for call in item["tool_calls"]}
        elif role == "tool":
            tool_call_id = message.get("tool_call_id")
            if tool_call_id not in called:
                raise InvalidArgument(
                    f"{where}: tool message with tool_call_id {tool_call_id!r} matches no earlier tool call"
                )
            item["tool_call_id"] = tool_call_id
            if message.get("name"):
                item["name"] = message["name"]
        out.append(item)
    return out


def validate_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Checks OpenAI function tools (name, JSON-schema parameters).

    Raises:
        InvalidArgument: naming the tool index and what is wrong.
    """
    if not tools:
        return None
    names = set()
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise InvalidArgument(f"tools[{i}]: expected {{'type': 'function', 'function': {{...}}}}")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"tools[{i}].function.name: required")
        names.add(name)
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise InvalidArgument(f"tools[{i}].function.parameters: must be a JSON schema object")
        try:
            jsonschema.validators.validator_for(parameters).check_schema(parameters)
        except jsonschema.SchemaError as exc:
            raise InvalidArgument(f"tools[{i}].function.parameters: invalid JSON schema: {exc.message}") from None
    return tools


@dataclass(frozen=True)
class ToolChoice:
    """How tools are offered and read for one request."""

    parse_tools: bool  # run the tool parser on the output
    forced_prefix: str = ""  # text the assistant turn starts with (required / named)


def resolve_tool_choice(request: ChatCompletionRequest, tools: list[dict[str, Any]] | None) -> ToolChoice:
    """`none`: tools are shown but not parsed; `auto`: parsed; `required` / named: the
    assistant turn is started with `<tool_call>` (and the name), so the model must call.

    vLLM enforces required/named with guided decoding; on the CPU backend we prefill the
    start of the call instead and parse as usual (documented in docs/inference.md).

    Raises:
        InvalidArgument: tool_choice names a tool that is not in `tools`, or asks for a call with no tools.
    """
    choice = request.tool_choice or ("auto" if tools else "none")
    if choice == "none" or (not tools and choice == "auto"):
        return ToolChoice(parse_tools=False)
    if not tools:
        raise InvalidArgument(f"tool_choice {choice!r} needs tools")
    if choice == "auto":
        return ToolChoice(parse_tools=True)
    if choice == "required":
        return ToolChoice(parse_tools=True, forced_prefix='<tool_call>\n{"name": "')
    function = choice.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidArgument('tool_choice: expected {"type": "function", "function": {"name": "<tool name>"}}')
    name = function["name"]
    known = [t["function"]["name"] for t in tools]
    if name not in known:
        raise InvalidArgument(f"tool_choice names {name!r}, which is not among the tools {known}")
    return ToolChoice(parse_tools=True, forced_prefix=f'<tool_call>\n{{"name": {json.dumps(name)}, "arguments": ')


def template_kwargs(request: ChatCompletionRequest, trust_request_template: bool) -> tuple[dict[str, Any], str | None]:
    """The request's chat_template_kwargs to render with, and its own template (None: the server's).

    Raises:
        InvalidArgument: a kwarg that is apply_chat_template's own argument, or a request template
            while the server does not trust them (vLLM's --trust-request-chat-template).
    """
    kwargs = dict(request.chat_template_kwargs or {})
    reserved = sorted(RESERVED_TEMPLATE_KWARGS & kwargs.keys())
    if reserved:
        raise InvalidArgument(f"chat_template_kwargs: {', '.join(reserved)} is set by the server, not by a request")
    template = kwargs.pop("chat_template", None) or request.chat_template
    if template is not None and not trust_request_template:
        # a template is code: rendering one a client sent can loop for as long as it likes
        raise InvalidArgument(
            "chat_template: this server renders only its own chat template; start it with "
            "TW_INFERENCE_TRUST_REQUEST_CHAT_TEMPLATE=true to accept a request's"
        )
    if template is not None and not isinstance(template, str):
        raise InvalidArgument("chat_template: expected the template's text")
    kwargs.setdefault("enable_thinking", True)
    return kwargs, template


def build_prompt(
    tokenizer: Any, request: ChatCompletionRequest, context_length: int, *, trust_request_template: bool = False
) -> tuple[list[int], ToolChoice]:
    """Renders and tokenizes the prompt for a request (CPU work: callers keep it off the event loop).

    Raises:
        InvalidArgument: bad messages, tools or template kwargs, n != 1, an untrusted request
            template, or a prompt longer than the context.
    """
    if request.n != 1:
        raise InvalidArgument("n: only n=1 is supported")
    messages = normalize_messages(request.messages)
    tools = validate_tools(request.tools)
    choice = resolve_tool_choice(request, tools)
    kwargs, template = template_kwargs(request, trust_request_template)
    text = tokenizer.apply_chat_template(
        messages, tools=tools, chat_template=template, add_generation_prompt=True, tokenize=False, **kwargs
    )
    if choice.forced_prefix and kwargs["enable_thinking"]:
        # a forced call ends the (empty) reasoning first, as the template does with thinking off
        choice = ToolChoice(choice.parse_tools, EMPTY_THINK + choice.forced_prefix)
    most = context_length * longest_token(tokenizer)
    if len(text) > most:  # certainly over the context: refused without tokenizing megabytes
        raise InvalidArgument(
            f"the prompt is {len(text)} characters, longer than the model's context of {context_length} tokens "
            f"can hold (at most {most} characters); shorten the messages or tool results"
        )
    ids = tokenizer(text + choice.forced_prefix, add_special_tokens=False)["input_ids"]
    if len(ids) >= context_length:
        raise InvalidArgument(
            f"the prompt is {len(ids)} tokens, longer than the model's context of {context_length} tokens; "
            "shorten the messages or tool results"
        )
    return ids, choice


@functools.lru_cache(maxsize=4)
def longest_token(tokenizer: Any) -> int:
    """The most characters one token of the vocabulary stands for (its longest entry)."""
    return max(len(token) for token in tokenizer.get_vocab())


def token_budget(request: ChatCompletionRequest, prompt_tokens: int, context_length: int, default: int) -> int:
    """The request's max_tokens: as asked when it fits the context after the prompt, else an error;
    when it asks none, `default` cut to what is left (as vLLM).

    Raises:
        InvalidArgument: max_tokens (or max_completion_tokens) runs past the context, with the numbers.
    """
    left = context_length - prompt_tokens
    asked = request.max_completion_tokens or request.max_tokens
    if asked is None:
        return min(default, left)
    if asked > left:
        raise InvalidArgument(
            f"max_tokens: this model's context is {context_length} tokens; the prompt takes {prompt_tokens}, "
            f"which leaves {left}, and the request asks for {asked} ({prompt_tokens + asked} in all); "
            "lower max_tokens or shorten the messages"
        )
    return asked
