"""tracewheel.core: what every tracewheel service shares.

The public surface is small on purpose; import the modules for the rest.
"""

from tracewheel.core.errors import (
    ConfigError,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TraceValidationError,
    TracewheelError,
    Unavailable,
)
from tracewheel.core.settings import ServiceSettings, load_settings
from tracewheel.core.trace import Message, Tool, ToolCall, Trace, parse_trace_json, validate_trace

__all__ = [
    "ConfigError",
    "Conflict",
    "FailedPrecondition",
    "InvalidArgument",
    "Message",
    "NotFound",
    "ServiceSettings",
    "Tool",
    "ToolCall",
    "Trace",
    "TraceValidationError",
    "TracewheelError",
    "Unavailable",
    "load_settings",
    "parse_trace_json",
    "validate_trace",
]
