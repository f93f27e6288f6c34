"""The dataset's settings inherit the build's options: one declaration, the flat TW_DATASET_* names."""

from __future__ import annotations

import pytest

from tracewheel.core.errors import ConfigError
from tracewheel.core.settings import load_settings
from tracewheel.dataset.__main__ import build_config
from tracewheel.dataset.config import DatasetSettings


def test_the_build_options_reach_the_build_from_their_flat_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_DATASET_MAX_LENGTH", "4096")
    monkeypatch.setenv("TW_DATASET_REASONING", "false")
    monkeypatch.setenv("TW_DATASET_EVAL_RATIO", "0")

    config = build_config(load_settings(DatasetSettings))

    assert (config.max_length, config.reasoning, config.eval_ratio, config.split_seed) == (4096, False, 0.0, "")


def test_a_build_option_is_checked_and_named_like_any_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_DATASET_EVAL_RATIO", "1.5")
    with pytest.raises(ConfigError, match="TW_DATASET_EVAL_RATIO: Input should be less than or equal to 1"):
        load_settings(DatasetSettings)
