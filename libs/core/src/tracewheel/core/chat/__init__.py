"""The chat contract every service shares: the shipped templates, the one resolver of a base
model's chat format, and trace messages as OpenAI chat dicts. Text and JSON only (no
transformers): the dataset image renders with it without the inference service's dependencies.
"""

from tracewheel.core.chat.formats import (
    FAMILIES,
    SERVING_TEMPLATE,
    TEMPLATE_NAMES,
    TRAINING_TEMPLATE,
    ChatFamily,
    ChatFormat,
    ChatTemplateError,
    UnknownTemplateError,
    detect_family,
    load_template,
    require_generation_markers,
    resolve_chat_format,
    template_label,
    template_sha256,
    template_text,
)
from tracewheel.core.chat.messages import ReasoningKey, as_written, openai_message, openai_messages, openai_tools

__all__ = [
    "FAMILIES",
    "SERVING_TEMPLATE",
    "TEMPLATE_NAMES",
    "TRAINING_TEMPLATE",
    "ChatFamily",
    "ChatFormat",
    "ChatTemplateError",
    "ReasoningKey",
    "UnknownTemplateError",
    "as_written",
    "detect_family",
    "load_template",
    "openai_message",
    "openai_messages",
    "openai_tools",
    "require_generation_markers",
    "resolve_chat_format",
    "template_label",
    "template_sha256",
    "template_text",
]
