"""Captured traces meet the dataset's curation rules as the agent's do: a refused or cut-short
call is rejected (never trained on), a conversation the client passed is approved, one the
client says was a held-out task of a suite is rejected whatever its verdict."""

from __future__ import annotations

from tracewheel.core.trace import Trace
from tracewheel.dataset.curation import CurationStatus, curate
from tracewheel.inference.capture.assemble import CallRequest, Reply
from tracewheel.inference.capture.book import CaptureBook
from tracewheel.inference.capture.call import CallState, CapturedCall
from tracewheel.inference.capture.feedback import parse_feedback

QUESTION = [{"role": "user", "content": "What is 2 + 2?"}]


def record(book: CaptureBook, state: CallState, header: str) -> list[Trace]:
    reply = Reply("chatcmpl-" + header, "teacher", "4", "Two and two.", [], "stop", 5, 1)
    call = CapturedCall(CallRequest("teacher", QUESTION, [], False), state, reply, "the upstream said no", header)
    return book.record(call)


def test_captured_traces_are_curated_by_their_outcome() -> None:
    book = CaptureBook(60)
    (refused,) = record(book, "refused", "r")
    (cut,) = record(book, "incomplete", "i")
    record(book, "ok", "passed")
    passed = book.complete("passed", parse_feedback(b'{"thumbs": "up"}'))
    record(book, "ok", "heldout")
    task = b'{"verdict": "passed", "task": {"suite": "team-docs", "task_id": "t1", "split": "heldout"}}'
    heldout = book.complete("heldout", parse_feedback(task))
    record(book, "ok", "silent")
    (silent,) = book.close_all()
    assert curate(refused).status == CurationStatus.REJECTED
    assert curate(cut).status == CurationStatus.REJECTED
    assert curate(passed).status == CurationStatus.APPROVED
    assert heldout.task is not None and heldout.task.task_id == "t1"
    assert curate(heldout).status == CurationStatus.REJECTED  # a held-out task is never trained on
    assert curate(silent).status == CurationStatus.PENDING  # no outcome: a person decides
