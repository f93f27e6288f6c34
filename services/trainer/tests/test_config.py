"""The trainer's settings inherit the evaluation options: one declaration, the flat TW_TRAINER_* names."""

from __future__ import annotations

import pytest

from tracewheel.core.settings import load_settings
from tracewheel.trainer.config import TrainerSettings


def test_the_evaluation_options_reach_the_target_from_their_flat_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_TRAINER_AGENT_ADDRESS", "agent:50053")
    monkeypatch.setenv("TW_TRAINER_EVAL_SUITE", "train")
    monkeypatch.setenv("TW_TRAINER_EVAL_TIMEOUT_S", "60")
    monkeypatch.setenv("TW_TRAINER_AUTH_TOKEN", "s3cret")

    target = load_settings(TrainerSettings).eval_target()

    assert target is not None
    assert (target.agent_address, target.inference_address, target.eval_suite) == (
        "agent:50053",
        "127.0.0.1:50051",
        "train",
    )
    assert (target.eval_concurrency, target.eval_timeout_s, target.token) == (0, 60.0, "s3cret")


def test_without_an_agent_adapters_are_not_evaluated() -> None:
    assert TrainerSettings().eval_target() is None
