"""The agent's settings inherit the loop's options: one declaration, the flat TW_AGENT_* names."""

from __future__ import annotations

import pytest

from tracewheel.agent.config import AgentSettings
from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.eval_cache import cache_key
from tracewheel.core.errors import ConfigError
from tracewheel.core.settings import load_settings


def test_the_loop_options_are_read_from_their_flat_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_AGENT_MAX_STEPS", "6")
    monkeypatch.setenv("TW_AGENT_TASK_REMINDER", "true")
    monkeypatch.setenv("TW_AGENT_TOOLS", '["browser_navigate", "browser_click"]')
    monkeypatch.setenv("TW_AGENT_TOOL_ARGUMENTS", '{"browser_click": ["ref"]}')

    settings = load_settings(AgentSettings)

    assert isinstance(settings, LoopOptions)
    assert (settings.max_steps, settings.task_reminder) == (6, True)
    assert settings.tools == ("browser_navigate", "browser_click")
    assert settings.tool_arguments == {"browser_click": ("ref",)}


def test_a_loop_option_is_checked_and_named_like_any_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_AGENT_MAX_STEPS", "0")
    with pytest.raises(ConfigError, match="TW_AGENT_MAX_STEPS: Input should be greater than or equal to 1"):
        load_settings(AgentSettings)


def test_an_option_that_is_no_more_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_AGENT_ANSWER_AT_LIMIT", "true")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) TW_AGENT_ANSWER_AT_LIMIT"):
        load_settings(AgentSettings)


def test_arguments_of_a_tool_not_offered_are_refused() -> None:
    with pytest.raises(ValueError, match="tool_arguments names tools that are not in tools: browser_tabs"):
        LoopOptions(tools=("browser_click",), tool_arguments={"browser_tabs": ("action",)})


def test_the_evaluation_cache_key_reads_only_the_loop_options() -> None:
    settings = AgentSettings(max_steps=4, grpc_port=6000, concurrency=7)

    assert cache_key("m", [], settings) == cache_key("m", [], LoopOptions(max_steps=4))
    assert cache_key("m", [], settings) != cache_key("m", [], LoopOptions(max_steps=5))
