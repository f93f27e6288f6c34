"""Edits a curator makes to a trace, as pure functions `Trace -> Trace`.

Each result is validated exactly like an ingested trace, so an edit can never store a
conversation that ingest would refuse. Deleting a turn keeps the conversation whole:

- an assistant message goes with the tool messages that answer its calls;
- a user message goes with the exchange it started (every message up to the next user
  message), since answers without their question would teach the wrong thing;
- a system message goes alone;
- a tool message alone is refused: its call would stay unanswered. Delete the assistant turn.
"""

from __future__ import annotations

import logging
from typing import Literal

from tracewheel.core.errors import FailedPrecondition, InvalidArgument
from tracewheel.core.trace import Message, Trace, validate_trace

logger = logging.getLogger(__name__)


def _checked_index(trace: Trace, index: int) -> int:
    if not 0 <= index < len(trace.messages):
        raise InvalidArgument(f"messages[{index}]: no such message; the trace has {len(trace.messages)} messages")
    return index


def _with_messages(trace: Trace, messages: list[Message], **changes: object) -> Trace:
    data = trace.model_dump(mode="json")
    data["messages"] = [message.model_dump(mode="json") for message in messages]
    data.update(changes)
    return validate_trace(data)


def replace_message_text(
    trace: Trace, index: int, text: str | None, field: Literal["content", "reasoning_content"] = "content"
) -> Trace:
    """Replaces one message's content (or reasoning) with `text`.

    Raises:
        InvalidArgument: no message at `index`.
        TraceValidationError: the edited trace is invalid.
    """
    _checked_index(trace, index)
    messages = list(trace.messages)
    messages[index] = messages[index].model_copy(update={field: text})
    return _with_messages(trace, messages)


def turn_indices(trace: Trace, index: int) -> list[int]:
    """The indices of the messages that deleting the turn at `index` removes (module docstring).

    Raises:
        InvalidArgument: no message at `index`.
        FailedPrecondition: `index` is a tool message.
    """
    message = trace.messages[_checked_index(trace, index)]
    if message.role == "tool":
        raise FailedPrecondition(
            f"messages[{index}] is a tool result; delete the assistant turn that made the call instead"
        )
    if message.role == "system":
        return [index]
    end = index + 1
    if message.role == "user":
        while end < len(trace.messages) and trace.messages[end].role != "user":
            end += 1
        return list(range(index, end))
    call_ids = {call.id for call in message.tool_calls}
    while end < len(trace.messages) and trace.messages[end].role == "tool":
        if trace.messages[end].tool_call_id not in call_ids:
            break
        end += 1
    return list(range(index, end))


def delete_turn(trace: Trace, index: int) -> Trace:
    """Deletes the turn at `index` and what belongs to it (module docstring).

    Raises:
        InvalidArgument: no message at `index`.
        FailedPrecondition: `index` is a tool message.
        TraceValidationError: nothing would be left, or the result is otherwise invalid.
    """
    removed = set(turn_indices(trace, index))
    kept = [message for i, message in enumerate(trace.messages) if i not in removed]
    logger.debug("trace %s: deleting messages %s", trace.id, sorted(removed))
    return _with_messages(trace, kept)


def strip_guidance(trace: Trace) -> Trace:
    """Removes the guidance system prompt and records it in the metadata.

    The guidance is `metadata.guidance_prompt` when set: it is cut from every system message
    that holds it (a message left empty is dropped). Without it (an imported Trelis file),
    the leading system message is the guidance: it is dropped and its text recorded.

    Raises:
        FailedPrecondition: the guidance was already stripped, or no system message holds it.
        TraceValidationError: nothing would be left.
    """
    metadata = trace.metadata
    if metadata.guidance_stripped:
        raise FailedPrecondition(f"trace {trace.id}: the guidance prompt was already stripped")
    guidance = metadata.guidance_prompt
    if guidance is None:
        if trace.messages[0].role != "system":
            raise FailedPrecondition(f"trace {trace.id}: no guidance prompt recorded and no leading system message")
        guidance = trace.messages[0].content or ""
        messages = list(trace.messages[1:])
    else:
        messages = _cut_guidance(trace, guidance)
    new_metadata = metadata.model_copy(update={"guidance_prompt": guidance, "guidance_stripped": True})
    return _with_messages(trace, messages, metadata=new_metadata.model_dump(mode="json"))


def _cut_guidance(trace: Trace, guidance: str) -> list[Message]:
    text = guidance.strip()
    messages: list[Message] = []
    found = False
    for message in trace.messages:
        if message.role == "system" and text and text in (message.content or ""):
            found = True
            rest = (message.content or "").replace(text, "").strip()
            if rest:
                messages.append(message.model_copy(update={"content": rest}))
            continue
        messages.append(message)
    if not found:
        raise FailedPrecondition(f"trace {trace.id}: no system message holds the recorded guidance prompt")
    return messages
