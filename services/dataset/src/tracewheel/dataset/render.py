"""Rendering a training row to tokens with a loss mask on its target assistant turns only.

The training chat template marks assistant turns' generated spans with `{% generation %}`:
every turn (SmolLM2's template), or the turns after the last user query (Qwen3's, which
renders earlier turns without their reasoning). So `apply_chat_template(...,
return_assistant_tokens_mask=True)` may mask more than the row's targets: a row also holds
earlier assistant turns as context (earlier queries' answers, a windowed trace's earlier
turns), which must not be trained again. Each marked turn renders as one contiguous masked run
(runs are separated by the unmasked `<|im_start|>assistant\n` header) and the marked turns are
the row's last ones, so the k-th last run is the k-th last assistant message: the row keeps the
runs of its targets, and a target the template does not mark is an error.

Every row is then checked: each kept run, decoded, must equal that turn's span in the rendered
text (from after `<|im_start|>assistant\n` up to and including `<|im_end|>`). A mismatch (a
tokenizer merging across the span edge, a template without generation markers, special tokens
inside a message) is a build error naming the trace, never a silently wrong mask.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from tracewheel.core.chat import as_written, openai_messages, openai_tools
from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.trace import Message, Tool
from tracewheel.dataset.unroll import TrainingRow

ASSISTANT_HEADER = "<|im_start|>assistant\n"
END_OF_TURN = "<|im_end|>"


class RenderedRow(BaseModel):
    """A row's tokens and its target-only loss mask (1 = trained); a packed prefix tree also has
    each token's position in its own row and its parent (pack.py)."""

    model_config = ConfigDict(frozen=True)

    input_ids: list[int]
    assistant_masks: list[int]
    position_ids: list[int] | None = None
    parents: list[int] | None = None

    @property
    def supervised_tokens(self) -> int:
        return sum(self.assistant_masks)


class RenderError(FailedPrecondition):
    """A row's loss mask does not match its rendered assistant turns."""


def chat_messages(row: TrainingRow) -> list[dict[str, Any]]:
    """The row's messages as the chat template takes them (tool-call arguments stay JSON strings),
    each assistant turn's content as the model wrote it before its calls (`as_written`: without the
    newline vLLM's hermes parser leaves before the first `<tool_call>`)."""
    return openai_messages(as_written(message) for message in row.messages)


def chat_tools(row: TrainingRow) -> list[dict[str, Any]]:
    return openai_tools(row.tools)


class ChatDicts:
    """Rows as `chat_messages`, `chat_tools` and their JSON give them, each distinct message and
    tool list converted once: a trace's rows share its Message and Tool objects (unroll slices
    the trace's lists), so a build converts each trace's messages once instead of once per row.
    The objects are kept with their conversion, so their ids stay theirs while the cache lives."""

    def __init__(self) -> None:
        self._messages: dict[int, tuple[Message, str, dict[str, Any]]] = {}
        self._tools: dict[tuple[int, ...], tuple[list[Tool], list[dict[str, Any]], str]] = {}

    def _message(self, message: Message) -> tuple[Message, str, dict[str, Any]]:
        found = self._messages.get(id(message))
        if found is None:
            [converted] = openai_messages([as_written(message)])
            given = {key: value for key, value in converted.items() if value is not None}
            found = self._messages[id(message)] = (message, json.dumps(converted, ensure_ascii=False), given)
        return found

    def _tool_list(self, row: TrainingRow) -> tuple[list[Tool], list[dict[str, Any]], str]:
        key = tuple(id(tool) for tool in row.tools)
        found = self._tools.get(key)
        if found is None:
            tools = chat_tools(row)
            found = self._tools[key] = (row.tools, tools, json.dumps(tools, ensure_ascii=False))
        return found

    def template_messages(self, row: TrainingRow) -> list[dict[str, Any]]:
        """`chat_messages(row)` as `apply_chat_template` hands them to the template (keys set to None
        left out); the dicts are shared between rows: read them, never change them."""
        return [self._message(message)[2] for message in row.messages]

    def tools(self, row: TrainingRow) -> list[dict[str, Any]]:
        """`chat_tools(row)`, shared as `template_messages` is."""
        return self._tool_list(row)[1]

    def messages_json(self, row: TrainingRow) -> str:
        """`row_messages_json(row)`: the messages' JSON joined as `json.dumps` joins list items."""
        return "[" + ", ".join(self._message(message)[1] for message in row.messages) + "]"

    def tools_json(self, row: TrainingRow) -> str:
        """`row_tools_json(row)`."""
        return self._tool_list(row)[2]


def row_messages_json(row: TrainingRow) -> str:
    return json.dumps(chat_messages(row), ensure_ascii=False)


def row_tools_json(row: TrainingRow) -> str:
    return json.dumps(chat_tools(row), ensure_ascii=False)


def masked_runs(mask: list[int]) -> list[tuple[int, int]]:
    """The `[start, end)` token ranges where the mask (of 0s and 1s) is 1, in order."""
    runs: list[tuple[int, int]] = []
    end = 0
    while True:  # list.index runs in C: rows are thousands of tokens
        try:
            start = mask.index(1, end)
        except ValueError:
            return runs
        try:
            end = mask.index(0, start)
        except ValueError:
            end = len(mask)
        runs.append((start, end))


def assistant_spans(text: str) -> list[str]:
    """Each assistant turn's generated text in a rendered conversation, `<|im_end|>` included."""
    spans = []
    position = text.find(ASSISTANT_HEADER)
    while position != -1:
        start = position + len(ASSISTANT_HEADER)
        end = text.find(END_OF_TURN, start)
        if end == -1:
            break
        spans.append(text[start : end + len(END_OF_TURN)])
        position = text.find(ASSISTANT_HEADER, end)
    return spans


def render_row(tokenizer: Any, chat_template: str, row: TrainingRow) -> RenderedRow:
    """Tokenizes a row and masks exactly its target assistant turns (end-of-turn token included).

    Raises:
        RenderError: the mask cannot be matched to the row's assistant turns (names the trace).
    """
    messages, tools = chat_messages(row), chat_tools(row)
    encoded = tokenizer.apply_chat_template(
        messages,
        tools=tools or None,
        chat_template=chat_template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    input_ids, all_assistant = list(encoded["input_ids"]), list(encoded["assistant_masks"])
    text = tokenizer.apply_chat_template(messages, tools=tools or None, chat_template=chat_template, tokenize=False)
    return target_mask(tokenizer, row, input_ids, all_assistant, text)


def target_mask(
    tokenizer: Any, row: TrainingRow, input_ids: list[int], all_assistant: list[int], text: str
) -> RenderedRow:
    """The row with only its targets' turns masked, from its tokens, the template's mask of every
    generated span (`all_assistant`) and the rendered text, each target checked by decoding it.

    Raises:
        RenderError: the mask cannot be matched to the row's assistant turns (names the trace).
    """
    assistant_indices = [index for index, message in enumerate(row.messages) if message.role == "assistant"]
    runs, spans = masked_runs(all_assistant), assistant_spans(text)
    if len(spans) != len(assistant_indices) or len(runs) > len(spans):
        raise RenderError(
            f"trace {row.trace_id!r}: {len(assistant_indices)} assistant turns rendered as {len(spans)} spans and"
            f" {len(runs)} masked runs; the template needs {{% generation %}} markers around each assistant turn"
        )
    first_marked = len(spans) - len(runs)
    marked = assistant_indices[first_marked:]
    if unmarked := sorted(set(row.targets) - set(marked)):
        raise RenderError(
            f"trace {row.trace_id!r}: the template marks {len(runs)} of the row's {len(spans)} assistant turns with"
            f" {{% generation %}}, not messages[{unmarked[0]}]: a row can train only the turns its template marks"
            " (Qwen3's: those after the row's last user query)"
        )
    mask = [0] * len(input_ids)
    targets = set(row.targets)
    decode = _decoder(tokenizer)
    for (start, end), span, index in zip(runs, spans[first_marked:], marked, strict=True):
        if index not in targets:
            continue
        decoded = decode(input_ids[start:end])
        if decoded != span:
            raise RenderError(
                f"trace {row.trace_id!r}: the loss mask of messages[{index}] decodes to {decoded[:80]!r},"
                f" expected {span[:80]!r}"
            )
        mask[start:end] = [1] * (end - start)
    return RenderedRow.model_construct(input_ids=input_ids, assistant_masks=mask)  # lists of ints, made here


def _decoder(tokenizer: Any) -> Any:
    """`tokenizer.decode(ids, skip_special_tokens=False)`: the fast tokenizer's Rust decode itself when
    transformers would not clean its output up (transformers first checks every id in Python)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or getattr(tokenizer, "clean_up_tokenization_spaces", True):
        return lambda ids: tokenizer.decode(ids, skip_special_tokens=False)
    return lambda ids: backend.decode(ids, skip_special_tokens=False)
