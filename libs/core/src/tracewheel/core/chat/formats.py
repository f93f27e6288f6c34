"""The chat templates this project ships and the one rule that picks a model's chat format.

A base model's family (read from its id, or from a local folder's chat template or the
`model_type` in its config.json) decides its serving template, its training template (the
same text with `{% generation %}` around the generated span of each assistant turn it trains,
for assistant-only loss) and the vLLM parsers that read its output. A setting may name another
template instead: a shipped name or a .jinja file. Inference, dataset builds and the trainer all
resolve through `resolve_chat_format`.

Adding a family is a template pair under `templates/` and one row in `FAMILIES`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from tracewheel.core.errors import ConfigError, FailedPrecondition

SERVING_TEMPLATE = "smollm2_tools"
"""Qwen3's chat format (tools, `<tool_call>`, `<tool_response>`, `<think>`) on SmolLM2's ChatML
tokens: what the embedded default model is served with."""
TRAINING_TEMPLATE = "smollm2_tools_train"
"""`smollm2_tools` with `{% generation %}` markers (a test keeps the two otherwise identical)."""

_GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")


@dataclass(frozen=True)
class ChatFamily:
    """One row of the family table.

    Attributes:
        name: the family's name (reported in `ChatFormat.family`).
        id_prefixes: lower-case prefixes of a model id's last part ("smollm2" matches
            "HuggingFaceTB/SmolLM2-135M-Instruct").
        model_types: `model_type` values of a local model folder's config.json.
        serving_template: a shipped template name; None serves the tokenizer's own.
        training_template: a shipped template name with `{% generation %}` markers.
        tool_call_parser: the vLLM tool-call parser that reads the model's output.
        reasoning_parser: the vLLM reasoning parser that reads the model's output.
    """

    name: str
    id_prefixes: tuple[str, ...]
    model_types: tuple[str, ...]
    serving_template: str | None
    training_template: str | None
    tool_call_parser: str = "hermes"
    reasoning_parser: str = "qwen3"


FAMILIES: tuple[ChatFamily, ...] = (
    # SmolLM2's config.json says "llama", which other families share: a local folder is not
    # taken for SmolLM2 by its model_type, only by the template it carries; an id is.
    ChatFamily(
        name="smollm2",
        id_prefixes=("smollm2",),
        model_types=(),
        serving_template=SERVING_TEMPLATE,
        training_template=TRAINING_TEMPLATE,
    ),
    # Qwen3's hybrid-thinking checkpoints (0.6B to 235B-A22B), served by vLLM with their own template.
    # The 2507 and Coder releases share the model_type but not this template: name theirs in a setting.
    ChatFamily(
        name="qwen3",
        id_prefixes=("qwen3-",),
        model_types=("qwen3", "qwen3_moe"),
        serving_template="qwen3",
        training_template="qwen3_train",
    ),
)

TEMPLATE_NAMES: tuple[str, ...] = tuple(
    name for family in FAMILIES for name in (family.serving_template, family.training_template) if name
)
"""Every template shipped in `tracewheel.core.chat` (`templates/<name>.jinja`)."""


@dataclass(frozen=True)
class ChatFormat:
    """How a base model's conversations are rendered and its output parsed.

    Attributes:
        family: the family's name; None when the base model is in no family of the table.
        serving_template: the Jinja source to serve with; None keeps the tokenizer's own.
        training_template: the Jinja source to train with (it has `{% generation %}` markers);
            None when neither the family nor a setting gives one.
        tool_call_parser: the vLLM tool-call parser name; "" when output is not parsed for calls.
        reasoning_parser: the vLLM reasoning parser name; "" when output is not parsed for reasoning.
    """

    family: str | None
    serving_template: str | None
    training_template: str | None
    tool_call_parser: str = "hermes"
    reasoning_parser: str = "qwen3"

    @property
    def training_template_sha256(self) -> str | None:
        """The SHA-256 (hex) of the training template's text, as a dataset manifest records it."""
        return None if self.training_template is None else template_sha256(self.training_template)


def template_sha256(template: str) -> str:
    """The SHA-256 (hex) of a template's source: what a dataset manifest records."""
    return hashlib.sha256(template.encode()).hexdigest()


def template_label(sha256: str) -> str:
    """A template's hash as people read it: the shipped name it is the hash of, with its first
    12 hex digits (`qwen3_train (sha256 1a2b3c4d5e6f)`); a template of one's own otherwise."""
    name = next((name for name in TEMPLATE_NAMES if template_sha256(load_template(name)) == sha256), None)
    return f"{name or 'a template not shipped here'} (sha256 {sha256[:12]})"


class UnknownTemplateError(ConfigError):
    """A template name that is not shipped, or a template path that is not a file."""


class ChatTemplateError(FailedPrecondition):
    """A chat template cannot do what it is needed for: there is none, or a training template
    has no `{% generation %}` markers."""


def load_template(name: str) -> str:
    """Return the Jinja source of the shipped template called `name` (one of `TEMPLATE_NAMES`).

    Raises:
        UnknownTemplateError: No template has that name; the message lists the known ones.
    """
    if name not in TEMPLATE_NAMES:
        raise UnknownTemplateError(f"unknown chat template {name!r}; known templates: {', '.join(TEMPLATE_NAMES)}")
    return files("tracewheel.core.chat").joinpath("templates", f"{name}.jinja").read_text(encoding="utf-8")


def template_text(spec: str, setting: str) -> str:
    """The Jinja source `spec` names: a shipped template name, else the path of a file.

    Raises:
        UnknownTemplateError: `spec` is neither; the message names `setting` and the known names.
    """
    if spec in TEMPLATE_NAMES:
        return load_template(spec)
    path = Path(spec)
    if not path.is_file():
        raise UnknownTemplateError(
            f"{setting}: {spec!r} is neither a shipped chat template ({', '.join(TEMPLATE_NAMES)}) nor a file"
        )
    return path.read_text(encoding="utf-8")


def require_generation_markers(template: str, setting: str) -> None:
    """Refuses a training template that cannot mark assistant tokens.

    Raises:
        ChatTemplateError: the template has no `{% generation %}` markers; the message says what to set.
    """
    if not _GENERATION_MARKER.search(template):
        training = [family.training_template for family in FAMILIES if family.training_template]
        raise ChatTemplateError(
            "the chat template has no {% generation %} markers, so assistant-only loss cannot be computed; "
            f"use a training template ({setting}: {' or '.join(training)})"
        )


def _folder_template(folder: Path) -> str | None:
    """The chat template a model folder carries: chat_template.jinja, else tokenizer_config.json's."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    template = json.loads(config.read_text(encoding="utf-8")).get("chat_template") if config.is_file() else None
    return template if isinstance(template, str) else None


def _family_shipping(template: str | None) -> ChatFamily | None:
    """The family whose serving or training template is `template`, word for word."""
    if template is None:
        return None
    shipped = {name: family for family in FAMILIES for name in (family.serving_template, family.training_template)}
    return next((family for name, family in shipped.items() if name and load_template(name) == template), None)


def detect_family(base_model: str) -> ChatFamily | None:
    """The family of a base model; None when no row matches.

    A folder with a config.json is in the family of the shipped template it carries (its
    tokenizer's chat template says its format: a Qwen3-architecture model on SmolLM2's
    tokenizer with `smollm2_tools` is SmolLM2's), else in the family of its `model_type`. Any
    other `base_model` is an id, matched by the prefix of its last part.
    """
    folder = Path(base_model) if base_model else None
    if folder is not None and (folder / "config.json").is_file():
        carried = _family_shipping(_folder_template(folder))
        if carried is not None:
            return carried
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
        return next((family for family in FAMILIES if model_type in family.model_types), None)
    name = base_model.rstrip("/").rsplit("/", 1)[-1].lower()
    return next((family for family in FAMILIES if name and name.startswith(family.id_prefixes)), None)


def resolve_chat_format(
    base_model: str,
    *,
    serving: str | None = None,
    training: str | None = None,
    tool_call_parser: str | None = None,
    reasoning_parser: str | None = None,
    setting: str = "chat_template",
) -> ChatFormat:
    """The chat format of `base_model`, with a setting's template or parser in place of the family's.

    Args:
        base_model: a model id ("HuggingFaceTB/SmolLM2-135M-Instruct") or a local model folder.
        serving: a shipped template name or .jinja path to serve with instead of the family's.
        training: a shipped template name or .jinja path to train with instead of the family's.
        tool_call_parser: a vLLM tool-call parser name instead of the family's; "" for none.
        reasoning_parser: a vLLM reasoning parser name instead of the family's; "" for none.
        setting: the setting the template override came from, named in error messages.

    Raises:
        UnknownTemplateError: an override is neither a shipped name nor a file.
        ChatTemplateError: the training template has no `{% generation %}` markers.
    """
    family = detect_family(base_model)

    def pick(override: str | None, shipped: str | None) -> str | None:
        if override:
            return template_text(override, setting)
        return load_template(shipped) if shipped else None

    serving_template = pick(serving, family.serving_template if family else None)
    training_template = pick(training, family.training_template if family else None)
    if training_template is not None:
        require_generation_markers(training_template, setting)
    defaults = family or ChatFormat(None, None, None)
    return ChatFormat(
        family.name if family else None,
        serving_template,
        training_template,
        defaults.tool_call_parser if tool_call_parser is None else tool_call_parser,
        defaults.reasoning_parser if reasoning_parser is None else reasoning_parser,
    )
