"""Grouping captured calls into conversations and completing them, with a test clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tracewheel.core.errors import Conflict, InvalidArgument, NotFound
from tracewheel.core.trace import Verdict
from tracewheel.inference.capture.assemble import CallRequest, Reply
from tracewheel.inference.capture.book import CaptureBook, trace_header
from tracewheel.inference.capture.call import CallState, CapturedCall
from tracewheel.inference.capture.feedback import parse_feedback

TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}, "strict": True}}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def call(
    messages: list[dict[str, Any]],
    reply: Reply | None = None,
    state: CallState = "ok",
    header: str | None = None,
    detail: str = "",
) -> CapturedCall:
    return CapturedCall(CallRequest("m", messages, TOOLS, False), state, reply, detail, header)


def answer(text: str, completion_id: str, reasoning: str | None = None, calls: int = 0) -> Reply:
    tool_calls = [
        {"id": f"{completion_id}-t{i}", "type": "function", "function": {"name": "search", "arguments": '{"q": "x"}'}}
        for i in range(calls)
    ]
    return Reply(completion_id, "m", text or None, reasoning, tool_calls, "stop", 10, 2)


def as_sent_back(reply: Reply) -> dict[str, Any]:
    """The reply as an openai client sends it back: reasoning dropped, arguments as sent."""
    return {"role": "assistant", "content": reply.content, "tool_calls": reply.tool_calls or None}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def two_turns(book: CaptureBook, topic: str, header: str | None = None) -> list[dict[str, Any]]:
    """A conversation: a question, a tool call, its result, an answer; returns the history so far."""
    first = answer("", f"{topic}-1", reasoning=f"think about {topic}", calls=1)
    history = [{"role": "system", "content": "Be brief."}, user(f"About {topic}?")]
    assert book.record(call(history, first, header=header)) == []
    history += [as_sent_back(first), {"role": "tool", "tool_call_id": f"{topic}-1-t0", "content": "found"}]
    second = answer(f"{topic} is fine", f"{topic}-2")
    assert book.record(call(history, second, header=header)) == []
    return [*history, as_sent_back(second)]


def test_calls_that_extend_each_other_are_one_trace_with_their_reasoning() -> None:
    book = CaptureBook(60, clock=Clock())
    two_turns(book, "apples")
    two_turns(book, "pears")  # interleaving conversations do not merge
    assert book.open_count == 2
    trace = book.complete("apples-2", parse_feedback(b'{"verdict": "passed", "score": 0.5, "note": "good"}'))
    assert [m.role for m in trace.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert trace.messages[2].reasoning_content == "think about apples"  # kept though the client dropped it
    assert trace.messages[2].tool_calls[0].function.arguments == '{"q": "x"}'
    assert trace.messages[4].content == "apples is fine"
    assert trace.outcome is not None and (trace.outcome.verdict, trace.outcome.score) == (Verdict.PASSED, 0.5)
    assert trace.outcome.detail == "good"
    assert trace.metadata.source == "capture" and trace.metadata.usage.prompt_tokens == 20
    assert trace.tools[0].function.name == "search"  # `strict` is not a Trace field and is dropped
    extra = trace.metadata.extra
    assert (extra["capture_calls"], extra["capture_grouping"], extra["capture_completed_by"]) == (
        "2",
        "prefix",
        "client",
    )
    assert book.open_count == 1


def test_a_new_question_in_the_same_chat_extends_it() -> None:
    book = CaptureBook(60, clock=Clock())
    history = two_turns(book, "plums")
    book.record(call([*history, user("And figs?")], answer("figs too", "plums-3")))
    trace = book.complete("plums-1")  # any of its completion ids finds it
    assert len(trace.messages) == 7 and trace.outcome is None


def test_the_header_groups_calls_and_names_the_trace() -> None:
    book = CaptureBook(60, clock=Clock())
    two_turns(book, "kiwis", header="run-7")
    book.record(call([user("unrelated")], answer("ok", "x-1"), header="run-7"))  # another call under the same id
    assert book.open_count == 1
    trace = book.complete("run-7", parse_feedback(b'{"thumbs": "down"}'))
    assert trace.id == "run-7.2" and trace.outcome is not None and trace.outcome.verdict == Verdict.FAILED
    assert trace.metadata.extra["feedback_thumbs"] == "down"
    with pytest.raises(Conflict, match="already completed"):
        book.complete("run-7")


def test_a_diverging_call_under_a_header_completes_the_first_trace() -> None:
    book = CaptureBook(60, clock=Clock())
    two_turns(book, "limes", header="job-1")
    done = book.record(call([user("a different conversation")], answer("sure", "d-1"), header="job-1"))
    assert [t.id for t in done] == ["job-1"] and done[0].metadata.extra["capture_completed_by"] == "diverged"
    assert book.complete("job-1").id == "job-1.2"


def test_idle_conversations_complete_after_the_timeout() -> None:
    clock = Clock()
    book = CaptureBook(30, clock=clock)
    two_turns(book, "figs")
    clock.now += 29
    assert book.expire() == []
    clock.now += 1
    (trace,) = book.expire()
    assert trace.metadata.extra["capture_completed_by"] == "idle" and trace.outcome is None
    with pytest.raises(Conflict, match="idle"):
        book.complete(trace.id)


def test_a_refused_call_is_its_own_trace_and_leaves_the_conversation_alone() -> None:
    book = CaptureBook(60, clock=Clock())
    history = two_turns(book, "dates")
    (refused,) = book.record(call([*history, user("again")], state="refused", detail="HTTP 400: too long"))
    assert refused.outcome is not None and refused.outcome.verdict == Verdict.ERROR
    assert refused.outcome.detail == "refused: HTTP 400: too long"
    assert refused.metadata.extra["capture_completed_by"] == "refused"
    book.record(call([*history, user("again")], answer("here", "dates-3")))  # the retry joins the conversation
    assert len(book.complete("dates-3").messages) == 7


def test_a_client_gone_mid_stream_leaves_an_incomplete_trace() -> None:
    book = CaptureBook(60, clock=Clock())
    history = two_turns(book, "nuts")
    partial = answer("half an ans", "nuts-3")
    (trace,) = book.record(call([*history, user("more?")], partial, state="incomplete", detail="the client went away"))
    assert [m.role for m in trace.messages][-1] == "user"  # the half reply is not kept
    assert trace.outcome is not None and trace.outcome.verdict == Verdict.ERROR
    assert trace.outcome.detail == "incomplete: the client went away"
    assert book.open_count == 0


def test_what_cannot_be_kept_is_a_parse_error() -> None:
    book = CaptureBook(60, clock=Clock())
    image = {"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {}}]}
    bad_arguments = Reply("b-1", "m", None, None, [{"id": "t", "function": {"name": "search", "arguments": "{oops"}}])
    book.record(call([image], bad_arguments))
    trace = book.close_all()[0]
    assert trace.metadata.parse_errors == [
        "messages[0].content[1]: a image_url part is not kept (text only)",
        "messages[1].tool_calls[0].function.arguments: not a JSON object: '{oops'",
    ]
    assert trace.messages[1].tool_calls[0].function.arguments == "{}"


def test_unknown_keys_are_not_found() -> None:
    with pytest.raises(NotFound, match="X-Tracewheel-Trace-Id"):
        CaptureBook(60).complete("nope")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"verdict": "great"}', "verdict"),
        (b'{"score": 2}', "score"),
        (b'{"thumbs": "sideways"}', "thumbs"),
        (b'{"colour": "red"}', "colour"),
        (b'{"verdict": "passed", "thumbs": "down"}', "thumbs"),
        (b"[1]", "body"),
        (b"{not json", "body"),
    ],
)
def test_malformed_feedback_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{field}: "):
        parse_feedback(body)


def test_trace_header_values() -> None:
    assert trace_header("run-1.a:b@c") == "run-1.a:b@c"
    assert trace_header("has space") is None and trace_header("x" * 129) is None and trace_header(None) is None


def test_identical_conversations_stay_apart() -> None:
    book = CaptureBook(60, clock=Clock())
    opening = [user("same question")]
    book.record(call(opening, answer("same answer", "a-1")))
    book.record(call(opening, answer("same answer", "b-1")))
    follow_up = [*opening, {"role": "assistant", "content": "same answer"}, user("next")]
    book.record(call(follow_up, answer("one", "a-2")))
    book.record(call(follow_up, answer("two", "b-2")))
    traces = book.close_all()
    assert sorted(json.dumps([m.content for m in t.messages]) for t in traces) == [
        json.dumps(["same question", "same answer", "next", "one"]),
        json.dumps(["same question", "same answer", "next", "two"]),
    ]
