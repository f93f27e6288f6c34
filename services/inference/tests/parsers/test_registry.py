"""Parser names are a public API: the vLLM CLI names resolve, unknown names fail clearly."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tracewheel.core.errors import ConfigError
from tracewheel.inference.parsers import UnknownParserError, get_reasoning_parser, get_tool_parser
from tracewheel.inference.parsers.reasoning.qwen3 import Qwen3ReasoningParser
from tracewheel.inference.parsers.registry import REASONING_PARSERS, TOOL_PARSERS
from tracewheel.inference.parsers.tools.hermes import HermesToolParser


def test_vllm_names_resolve() -> None:
    assert get_tool_parser("hermes") is HermesToolParser
    assert get_reasoning_parser("qwen3") is Qwen3ReasoningParser


def test_every_registered_class_carries_its_name() -> None:
    assert all(get_tool_parser(name).name == name for name in TOOL_PARSERS)
    assert all(get_reasoning_parser(name).name == name for name in REASONING_PARSERS)


@pytest.mark.parametrize(
    ("lookup", "name", "known"),
    [(get_tool_parser, "qwen3", "hermes"), (get_reasoning_parser, "deepseek_r1", "qwen3")],
)
def test_unknown_name_lists_known_names(lookup: Callable[[str], type], name: str, known: str) -> None:
    with pytest.raises(UnknownParserError, match=rf"unknown .* parser '{name}'; known .*: {known}") as caught:
        lookup(name)
    assert isinstance(caught.value, ConfigError)
