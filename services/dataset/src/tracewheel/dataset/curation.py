"""Curation rules that run when a trace is ingested.

Each rule is a plain function `(trace, context) -> Finding | None`; `RULES` lists them in the
order they run and `curate` combines their findings into one decision:

- any `reject` finding -> rejected (the reasons joined), whatever else was found;
- else any `flag` finding -> pending, so a person looks at it (a flag blocks auto-approval);
- else an `approve` finding -> approved;
- else pending with no reason.

Every finding adds its tag, so flagged and rejected traces can be filtered in the UI.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tracewheel.core.trace import Trace, Verdict

logger = logging.getLogger(__name__)


HELD_OUT = "heldout"
"""The split of a suite's tasks that evaluations and the deployment gate use (`Task.split`)."""


class CurationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class CurationSettings(BaseModel):
    """Which rules run on ingest, and their limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approve_verified: bool = True
    """Approve a trace whose checker verdict is `passed`, unless another rule flags or rejects it."""
    reject_parse_errors: bool = True
    """Reject a trace whose metadata lists model-output parse errors (a malformed tool call)."""
    reject_errored_runs: bool = True
    """Reject a trace whose verdict is `error` (a timeout, a crash, a step limit)."""
    reject_rejected_tool_calls: bool = True
    """Reject a trace in which the user refused a tool call (the model asked for the wrong thing)."""
    rejected_tool_call_text: str = "User rejected tool call."
    """The tool message content the agent writes when the user refuses a call."""
    flag_duplicates: bool = True
    """Flag a trace with the same task, tool-call sequence and final answer as a stored one."""
    max_chars: int = Field(default=200_000, ge=0)
    """Flag a trace whose text (contents, reasoning, arguments) is longer; 0: no limit."""
    max_messages: int = Field(default=200, ge=0)
    """Flag a trace with more messages; 0: no limit."""


class Finding(BaseModel):
    """What one rule concluded about a trace."""

    model_config = ConfigDict(frozen=True)

    effect: Literal["approve", "reject", "flag"]
    reason: str
    tag: str


class CurationDecision(BaseModel):
    """The status a trace is stored with, why, and the tags the rules gave it."""

    model_config = ConfigDict(frozen=True)

    status: CurationStatus = CurationStatus.PENDING
    reason: str = ""
    tags: tuple[str, ...] = ()


DuplicateLookup = Callable[[str], str | None]
"""Given a duplicate fingerprint, the id of a stored trace that has it, or None."""


@dataclass(frozen=True)
class RuleContext:
    settings: CurationSettings
    duplicate_of: DuplicateLookup


Rule = Callable[[Trace, RuleContext], Finding | None]


def final_answer(trace: Trace) -> str:
    """The outcome's final answer, else the content of the last assistant message."""
    if trace.outcome is not None and trace.outcome.final_answer is not None:
        return trace.outcome.final_answer.strip()
    for message in reversed(trace.messages):
        if message.role == "assistant":
            return (message.content or "").strip()
    return ""


def duplicate_fingerprint(trace: Trace) -> str:
    """Same model, same task, same tool calls (names and arguments, in order), same answer -> same hash.

    The task is the suite and task id when the trace has one, else the first user message
    (imported traces carry no task). Arguments are compared as JSON values, not as text.
    The model is part of it: the rule stops one model's identical runs from piling up, while a
    student's own success on a task a demonstration also solved is new data for the next round
    (its reasoning and wording are its own: the self-training signal of round 2).
    """
    if trace.task is not None and trace.task.task_id:
        task_key = f"{trace.task.suite}/{trace.task.task_id}"
    else:
        task_key = next((m.content or "" for m in trace.messages if m.role == "user"), "")
    calls = [
        [call.function.name, json.loads(call.function.arguments)]
        for message in trace.messages
        for call in message.tool_calls
    ]
    canonical = json.dumps([trace.model, task_key, calls, final_answer(trace)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def verified_pass(trace: Trace, context: RuleContext) -> Finding | None:
    """Approve a run the task checker verified."""
    if context.settings.approve_verified and trace.outcome is not None and trace.outcome.verdict == Verdict.PASSED:
        return Finding(effect="approve", reason="checker verified the answer", tag="verified")
    return None


def is_held_out(trace: Trace) -> bool:
    """Whether the trace is a run of a suite's held-out task (its split is `heldout`)."""
    return trace.task is not None and trace.task.split == HELD_OUT


def held_out_task(trace: Trace, context: RuleContext) -> Finding | None:
    """Reject a run of a held-out task: held-out tasks never feed a build, whatever the verdict
    (no setting turns this off; the store also refuses to approve one by hand)."""
    if is_held_out(trace):
        task = trace.task
        assert task is not None
        reason = f"a run of held-out task {task.suite}/{task.task_id}: held-out tasks never feed a build"
        return Finding(effect="reject", reason=reason, tag="held-out")
    return None


def parse_errors(trace: Trace, context: RuleContext) -> Finding | None:
    """Reject a run in which the model's output failed to parse."""
    errors = trace.metadata.parse_errors
    if context.settings.reject_parse_errors and errors:
        return Finding(
            effect="reject", reason=f"{len(errors)} model output parse error(s), first: {errors[0]}", tag="parse-error"
        )
    return None


def errored_run(trace: Trace, context: RuleContext) -> Finding | None:
    """Reject a run that ended in an error or a timeout."""
    if context.settings.reject_errored_runs and trace.outcome is not None and trace.outcome.verdict == Verdict.ERROR:
        detail = trace.outcome.detail or "no detail"
        return Finding(effect="reject", reason=f"run ended in error: {detail}", tag="error")
    return None


def rejected_tool_calls(trace: Trace, context: RuleContext) -> Finding | None:
    """Reject a run in which the user refused a tool call."""
    if not context.settings.reject_rejected_tool_calls:
        return None
    text = context.settings.rejected_tool_call_text
    refused = [i for i, m in enumerate(trace.messages) if m.role == "tool" and (m.content or "").strip() == text]
    count = max(trace.metadata.rejected_tool_calls, len(refused))
    if count == 0:
        return None
    where = f" (messages{refused})" if refused else ""
    reason = f"{count} tool call(s) rejected by the user{where}"
    return Finding(effect="reject", reason=reason, tag="rejected-tool-call")


def duplicate(trace: Trace, context: RuleContext) -> Finding | None:
    """Flag a run that repeats a stored one (same task, tool calls and final answer)."""
    if not context.settings.flag_duplicates:
        return None
    original = context.duplicate_of(duplicate_fingerprint(trace))
    if original is None or original == trace.id:
        return None
    return Finding(effect="flag", reason=f"duplicate of {original}", tag="duplicate")


def text_length(trace: Trace) -> int:
    """Characters of content, reasoning and tool-call arguments over all messages."""
    total = 0
    for message in trace.messages:
        total += len(message.content or "") + len(message.reasoning_content or "")
        total += sum(len(call.function.arguments) for call in message.tool_calls)
    return total


def over_length(trace: Trace, context: RuleContext) -> Finding | None:
    """Flag a run longer than the configured character or message limit."""
    settings = context.settings
    problems = []
    if settings.max_messages and len(trace.messages) > settings.max_messages:
        problems.append(f"{len(trace.messages)} messages > {settings.max_messages}")
    chars = text_length(trace)
    if settings.max_chars and chars > settings.max_chars:
        problems.append(f"{chars} characters > {settings.max_chars}")
    if not problems:
        return None
    return Finding(effect="flag", reason="over length: " + ", ".join(problems), tag="over-length")


RULES: tuple[Rule, ...] = (
    verified_pass,
    held_out_task,
    parse_errors,
    errored_run,
    rejected_tool_calls,
    duplicate,
    over_length,
)


def _no_duplicates(_fingerprint: str) -> str | None:
    return None


def curate(
    trace: Trace,
    settings: CurationSettings | None = None,
    duplicate_of: DuplicateLookup = _no_duplicates,
    rules: Sequence[Rule] = RULES,
) -> CurationDecision:
    """Runs the rules over a trace and combines their findings (see the module docstring).

    `duplicate_of` looks a fingerprint up among stored traces; the store passes one that reads
    inside the ingest transaction, so the check and the insert are atomic.
    """
    context = RuleContext(settings=settings or CurationSettings(), duplicate_of=duplicate_of)
    findings = [finding for rule in rules if (finding := rule(trace, context)) is not None]
    tags = tuple(dict.fromkeys(finding.tag for finding in findings))
    for effect, status in (("reject", CurationStatus.REJECTED), ("flag", CurationStatus.PENDING)):
        reasons = [finding.reason for finding in findings if finding.effect == effect]
        if reasons:
            decision = CurationDecision(status=status, reason="; ".join(reasons), tags=tags)
            break
    else:
        approvals = [finding.reason for finding in findings if finding.effect == "approve"]
        status = CurationStatus.APPROVED if approvals else CurationStatus.PENDING
        decision = CurationDecision(status=status, reason="; ".join(approvals), tags=tags)
    logger.debug("curated %s: %s (%s)", trace.id, decision.status, decision.reason)
    return decision
