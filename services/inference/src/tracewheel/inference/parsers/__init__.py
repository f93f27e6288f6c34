"""Model-output parsing that matches vLLM: reasoning (`qwen3`) and tool calls (`hermes`).

Plain Python, no server imports. Look a parser up by its vLLM name, build an `OutputParser`
per request, then `parse()` a whole output or feed a `stream()` delta by delta; the streamed
deltas always add up to the whole-output result. docs/inference-parsing.md explains the rules.
"""

from tracewheel.inference.parsers.base import ReasoningParser, StreamingParser, ToolParser
from tracewheel.inference.parsers.pipeline import OutputParser, ParsedOutput, collect_deltas
from tracewheel.inference.parsers.registry import UnknownParserError, get_reasoning_parser, get_tool_parser
from tracewheel.inference.parsers.types import (
    DeltaFunctionCall,
    DeltaMessage,
    DeltaToolCall,
    ExtractedReasoning,
    ExtractedToolCalls,
    make_tool_call_id,
)

__all__ = [
    "DeltaFunctionCall",
    "DeltaMessage",
    "DeltaToolCall",
    "ExtractedReasoning",
    "ExtractedToolCalls",
    "OutputParser",
    "ParsedOutput",
    "ReasoningParser",
    "StreamingParser",
    "ToolParser",
    "UnknownParserError",
    "collect_deltas",
    "get_reasoning_parser",
    "get_tool_parser",
    "make_tool_call_id",
]
