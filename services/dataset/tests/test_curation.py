"""Curation rules: each rule alone, how findings combine, and the settings that switch them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tracewheel.core.trace import validate_trace
from tracewheel.dataset.curation import (
    CurationSettings,
    CurationStatus,
    curate,
    duplicate_fingerprint,
    text_length,
)

TraceFactory = Callable[..., dict[str, Any]]


def test_a_verified_pass_is_approved(make_trace: TraceFactory) -> None:
    decision = curate(validate_trace(make_trace()))
    assert decision.status == CurationStatus.APPROVED
    assert decision.tags == ("verified",)


def test_an_unverified_run_stays_pending(make_trace: TraceFactory) -> None:
    for verdict in ("failed", "unspecified"):
        decision = curate(validate_trace(make_trace(verdict=verdict)))
        assert decision.status == CurationStatus.PENDING
        assert decision.reason == ""


def test_parse_errors_reject_with_the_first_error(make_trace: TraceFactory) -> None:
    trace = validate_trace(make_trace(metadata={"parse_errors": ["<tool_call>{bad json", "another"]}))
    decision = curate(trace)
    assert decision.status == CurationStatus.REJECTED
    assert "2 model output parse error(s), first: <tool_call>{bad json" in decision.reason
    assert "parse-error" in decision.tags


def test_an_errored_run_is_rejected_with_its_detail(make_trace: TraceFactory) -> None:
    data = make_trace(verdict="error")
    data["outcome"]["detail"] = "timed out after 300 s"
    decision = curate(validate_trace(data))
    assert decision.status == CurationStatus.REJECTED
    assert decision.reason == "run ended in error: timed out after 300 s"
    assert decision.tags == ("error",)


def test_rejected_tool_calls_reject_from_metadata_or_tool_message(make_trace: TraceFactory) -> None:
    by_metadata = curate(validate_trace(make_trace(metadata={"rejected_tool_calls": 2})))
    assert by_metadata.status == CurationStatus.REJECTED
    assert by_metadata.reason == "2 tool call(s) rejected by the user"

    data = make_trace()
    data["messages"][3]["content"] = "User rejected tool call."
    by_message = curate(validate_trace(data))
    assert by_message.status == CurationStatus.REJECTED
    assert by_message.reason == "1 tool call(s) rejected by the user (messages[3])"
    assert "verified" in by_message.tags  # a rejection wins over the checker's pass


def test_a_duplicate_is_flagged_and_not_approved(make_trace: TraceFactory) -> None:
    original = validate_trace(make_trace("run-1"))
    again = validate_trace(make_trace("run-2", created_at="2026-11-02T10:00:00Z"))
    fingerprints = {duplicate_fingerprint(original): original.id}
    decision = curate(again, duplicate_of=fingerprints.get)
    assert decision.status == CurationStatus.PENDING
    assert decision.reason == "duplicate of run-1"
    assert decision.tags == ("verified", "duplicate")


def test_the_fingerprint_compares_arguments_as_json_and_ignores_reasoning(make_trace: TraceFactory) -> None:
    data = make_trace()
    base = duplicate_fingerprint(validate_trace(data))
    data["messages"][2]["tool_calls"][0]["function"]["arguments"] = json.dumps(
        {"url": "http://127.0.0.1:8400"}, indent=2
    )
    data["messages"][2]["reasoning_content"] = "Other thoughts, same actions."
    assert duplicate_fingerprint(validate_trace(data)) == base
    assert duplicate_fingerprint(validate_trace(make_trace(url="http://127.0.0.1:8400/other"))) != base
    assert duplicate_fingerprint(validate_trace(make_trace(answer="The Blue teapot."))) != base
    assert duplicate_fingerprint(validate_trace(make_trace(task_id="another-task"))) != base
    student = make_trace()
    student["model"] = "agent-20261121-0001"
    assert duplicate_fingerprint(validate_trace(student)) != base  # a student's own success is new data


def test_without_a_task_the_first_user_message_is_the_task(make_trace: TraceFactory) -> None:
    a = make_trace(task=None, outcome=None)
    b = make_trace(task=None, outcome=None)
    b["messages"][1]["content"] = "A different question"
    assert duplicate_fingerprint(validate_trace(a)) != duplicate_fingerprint(validate_trace(b))


def test_over_length_is_flagged_by_chars_or_messages(make_trace: TraceFactory) -> None:
    trace = validate_trace(make_trace())
    by_chars = curate(trace, CurationSettings(max_chars=text_length(trace) - 1))
    assert by_chars.status == CurationStatus.PENDING
    assert by_chars.reason == f"over length: {text_length(trace)} characters > {text_length(trace) - 1}"
    by_messages = curate(trace, CurationSettings(max_messages=3))
    assert by_messages.reason == "over length: 5 messages > 3"
    assert by_messages.tags == ("verified", "over-length")
    assert curate(trace, CurationSettings(max_chars=0, max_messages=0)).status == CurationStatus.APPROVED


def test_rejections_and_flags_combine(make_trace: TraceFactory) -> None:
    trace = validate_trace(make_trace(verdict="error", metadata={"parse_errors": ["x"]}))
    decision = curate(trace, CurationSettings(max_messages=1))
    assert decision.status == CurationStatus.REJECTED
    assert decision.reason.startswith("1 model output parse error(s), first: x; run ended in error")
    assert decision.tags == ("parse-error", "error", "over-length")


def test_settings_switch_rules_off(make_trace: TraceFactory) -> None:
    trace = validate_trace(make_trace(metadata={"parse_errors": ["x"], "rejected_tool_calls": 1}))
    relaxed = CurationSettings(reject_parse_errors=False, reject_rejected_tool_calls=False, approve_verified=False)
    assert curate(trace, relaxed).status == CurationStatus.PENDING
    errored = validate_trace(make_trace(verdict="error"))
    assert curate(errored, CurationSettings(reject_errored_runs=False)).status == CurationStatus.PENDING
    original = validate_trace(make_trace("run-1"))
    lookup = {duplicate_fingerprint(original): "run-0"}.get
    assert curate(original, CurationSettings(flag_duplicates=False), lookup).status == CurationStatus.APPROVED
