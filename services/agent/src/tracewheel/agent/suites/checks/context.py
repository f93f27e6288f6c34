"""What a checker reads (`CheckContext`) and what it answers (`CheckResult`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracewheel.core.trace import Judgment, Message, Verdict

if TYPE_CHECKING:
    import httpx

    from tracewheel.agent.suites.spec import JudgeEndpoint
    from tracewheel.agent.tasks.model import Task

_PAGE_URL = re.compile(r"^- Page URL: (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class PageState:
    """The page a run ended on: its URL and the text of a `browser_snapshot` taken after the run
    (the ARIA snapshot, as the model reads pages)."""

    url: str
    text: str

    @classmethod
    def from_snapshot(cls, text: str) -> PageState:
        """From a browser tool's result (`- Page URL: ...` then the snapshot)."""
        match = _PAGE_URL.search(text)
        return cls(url=match.group(1) if match else "", text=text)


@dataclass(frozen=True)
class InferenceEndpoint:
    """The agent's own OpenAI-compatible server: where a judge without a `base_url` is asked."""

    base_url: str
    api_key: str = "EMPTY"


@dataclass(frozen=True)
class CheckContext:
    """Everything a checker may read about a finished run.

    Attributes:
        task: the task that ran.
        final_answer: the run's final answer ("" when it gave none).
        page: the final page (None when the task has no end-state check or no page was open).
        messages: the run's conversation (a judge reads its tool calls).
        http: the client end-state checks, entry points and judges use.
        judge: the suite's default judge endpoint.
        inference: the agent's own inference server (a judge's default `base_url`).
        params: a `python` check's `params`.
    """

    task: Task
    final_answer: str
    http: httpx.AsyncClient
    page: PageState | None = None
    messages: Sequence[Message] = ()
    judge: JudgeEndpoint | None = None
    inference: InferenceEndpoint | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    """A checker's answer: the verdict (`passed`, `failed`, or `error` when it could not decide), a
    score in [0, 1], why, and what each judge was asked and answered."""

    verdict: Verdict
    reason: str
    score: float = 0.0
    judgments: tuple[Judgment, ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict == Verdict.PASSED

    @classmethod
    def of(cls, passed: bool, reason: str) -> CheckResult:
        """A pass (score 1) or a failure (score 0)."""
        return cls(Verdict.PASSED if passed else Verdict.FAILED, reason, 1.0 if passed else 0.0)

    @classmethod
    def error(cls, reason: str, judgments: tuple[Judgment, ...] = ()) -> CheckResult:
        """The checker could not decide: never a pass."""
        return cls(Verdict.ERROR, reason, 0.0, judgments)
