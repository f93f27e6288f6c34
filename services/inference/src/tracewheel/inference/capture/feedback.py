"""The optional body of `POST /v1/traces/{id}/complete`: the outcome a client reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracewheel.core.errors import InvalidArgument
from tracewheel.core.trace import Outcome, Task, Verdict
from tracewheel.inference.capture.assemble import json_object

THUMBS_VERDICT = {"up": Verdict.PASSED, "down": Verdict.FAILED}


class Feedback(BaseModel):
    """What the client says about a finished conversation; every field optional.

    `verdict` is the checker's word (`passed` traces are approved by curation, `error` ones
    rejected); `thumbs` is a person's, and stands for the verdict when none is given (up:
    passed, down: failed). `score` is in [0, 1]; `note` lands in the outcome's detail. `task`
    says which task of which suite the conversation was (`split` heldout: curation rejects it,
    as it does the agent's held-out runs).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Literal["passed", "failed", "error"] | None = None
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    thumbs: Literal["up", "down"] | None = None
    note: str | None = Field(default=None, max_length=10_000)
    final_answer: str | None = None
    task: Task | None = None

    def outcome(self) -> Outcome:
        """The trace outcome this feedback gives."""
        if self.verdict is not None:
            verdict = Verdict(self.verdict)
        else:
            verdict = THUMBS_VERDICT[self.thumbs] if self.thumbs else Verdict.UNSPECIFIED
        return Outcome(
            verdict=verdict,
            score=self.score or 0.0,
            final_answer=self.final_answer,
            detail=self.note or "",
        )


def parse_feedback(body: bytes) -> Feedback | None:
    """The feedback in a request body (empty body: none).

    Raises:
        InvalidArgument: not a JSON object, an unknown field, or a bad value; the message names the field.
    """
    if not body.strip():
        return None
    try:
        data = json_object(body, "body")
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    try:
        feedback = Feedback.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        ]
        raise InvalidArgument("; ".join(problems)) from None
    verdict, thumbs = feedback.verdict, feedback.thumbs
    if verdict not in (None, "error") and thumbs is not None and THUMBS_VERDICT[thumbs] != Verdict(verdict):
        raise InvalidArgument(f"thumbs: {feedback.thumbs!r} contradicts verdict {feedback.verdict!r}")
    return feedback
