"""Capture's options, declared once; the inference settings inherit them (`TW_INFERENCE_CAPTURE...`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CaptureOptions(BaseModel):
    """Whether and how the OpenAI endpoint records conversations as traces."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    capture: bool = Field(
        default=False,
        description="Record each conversation on /v1/chat/completions and publish it as traces.v1.completed "
        "(docs/capture.md).",
    )
    capture_idle_timeout_s: float = Field(
        default=300.0, gt=0, description="A captured conversation with no call for this long is completed."
    )
    capture_queue_size: int = Field(
        default=1000, ge=1, description="Completed traces held in memory for publishing; beyond it they spool to disk."
    )
    capture_retry_s: float = Field(
        default=5.0, gt=0, description="How often traces spooled while NATS was unreachable are published again."
    )
