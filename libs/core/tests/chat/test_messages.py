"""Trace messages as OpenAI chat dicts: the OpenAI shape, reasoning under the caller's key."""

from __future__ import annotations

from tracewheel.core.chat import as_written, openai_message, openai_messages, openai_tools
from tracewheel.core.trace import FunctionCall, FunctionTool, Message, Tool, ToolCall

CALL = ToolCall(id="chatcmpl-tool-1", function=FunctionCall(name="navigate", arguments='{"url": "http://shop"}'))


def test_messages_take_the_openai_shape() -> None:
    messages = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Open the shop."),
        Message(role="assistant", content=None, reasoning_content="Navigate first.", tool_calls=[CALL]),
        Message(role="tool", tool_call_id="chatcmpl-tool-1", name="navigate", content="ok"),
        Message(role="assistant", content="Done."),
    ]

    assert openai_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Open the shop."},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "Navigate first.",
            "tool_calls": [
                {
                    "id": "chatcmpl-tool-1",
                    "type": "function",
                    "function": {"name": "navigate", "arguments": '{"url": "http://shop"}'},
                }
            ],
        },
        {"role": "tool", "content": "ok", "tool_call_id": "chatcmpl-tool-1", "name": "navigate"},
        {"role": "assistant", "content": "Done."},
    ]


def test_reasoning_goes_under_the_callers_key() -> None:
    message = Message(role="assistant", content="Done.", reasoning_content="")

    assert openai_message(message) == {"role": "assistant", "content": "Done.", "reasoning_content": ""}
    assert openai_message(message, reasoning_key="reasoning") == {
        "role": "assistant",
        "content": "Done.",
        "reasoning": "",
    }


def test_tools_are_openai_function_tools() -> None:
    tool = Tool(function=FunctionTool(name="navigate", parameters={"type": "object", "properties": {}}))

    assert openai_tools([tool]) == [
        {
            "type": "function",
            "function": {"name": "navigate", "description": "", "parameters": {"type": "object", "properties": {}}},
        }
    ]


def test_as_written_drops_the_one_newline_hermes_leaves_before_the_first_call() -> None:
    written = as_written(Message(role="assistant", content="\n\nLet me look.\n", tool_calls=[CALL]))

    assert written.content == "\n\nLet me look." and written.tool_calls == [CALL]
    two = Message(role="assistant", content="Look.\n\n", tool_calls=[CALL])
    assert as_written(two).content == "Look.\n"  # the model wrote a blank line: one newline is the template's
    for unchanged in (
        Message(role="assistant", content="Done.\n"),  # no call: the content is all the model wrote
        Message(role="assistant", content="Look.", tool_calls=[CALL]),
        Message(role="assistant", content=None, tool_calls=[CALL]),
        Message(role="user", content="Hi.\n"),
    ):
        assert as_written(unchanged) is unchanged
