"""The project's chat templates, shipped as package data (`<name>.jinja` next to this file).

- `smollm2_tools`: Qwen3's chat format (tools, `<tool_call>`, `<tool_response>`, `<think>`)
  on SmolLM2's ChatML tokens; what the transformers backend serves SmolLM2 with.
- `smollm2_tools_train`: the same text with `{% generation %}` around each assistant turn's
  generated span, for `return_assistant_tokens_mask=True` / TRL's `assistant_only_loss`.

Qwen3 models use their own template; docs/inference-parsing.md describes the format.
"""

from __future__ import annotations

from importlib.resources import files

from tracewheel.core.errors import ConfigError

SERVING_TEMPLATE = "smollm2_tools"
TRAINING_TEMPLATE = "smollm2_tools_train"
TEMPLATE_NAMES: tuple[str, ...] = (SERVING_TEMPLATE, TRAINING_TEMPLATE)


class UnknownTemplateError(ConfigError):
    """A template name that is not shipped with this package."""


def load_template(name: str) -> str:
    """Return the Jinja source of the template called `name` (one of `TEMPLATE_NAMES`).

    Raises:
        UnknownTemplateError: No template has that name; the message lists the known ones.
    """
    if name not in TEMPLATE_NAMES:
        raise UnknownTemplateError(f"unknown chat template {name!r}; known templates: {', '.join(TEMPLATE_NAMES)}")
    return files(__name__).joinpath(f"{name}.jinja").read_text(encoding="utf-8")
