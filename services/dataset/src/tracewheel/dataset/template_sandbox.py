"""A chat template rendered as transformers renders it, in a sandbox that makes the same checks faster.

transformers' `render_jinja_template` (what `apply_chat_template` calls) runs the template in
Jinja's `ImmutableSandboxedEnvironment`. Over a build, most of a row's render time went to the
sandbox: `message.content` on a dict first tries the attribute, fails with an AttributeError,
then reads the key; and every attribute's safety is decided again at every access.
`FastSandbox` gives the same answers sooner: a plain dict's key when `dict` has no attribute of
that name (what the sandbox returns after its failed getattr), and each (type, attribute)
pair's safety decided once (Jinja's checks read nothing else). Everything else (extensions,
filters, globals: `{% generation %}`, `tojson`, `raise_exception`, the restricted `dict` and
`namespace`) is transformers' own, read from its compiled template, and the row is rendered by
the same function transformers uses, so text and generation spans are the same (tested against
`apply_chat_template` in test_render_batch.py).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment
from transformers.utils.chat_template_utils import (
    _alias_reasoning_fields,
    _compile_jinja_template,
    _render_with_assistant_indices,
)

_DICT_ATTRIBUTES = frozenset(dir(dict))


class FastSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with a dict's keys read directly and safety decisions kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._safe: dict[tuple[type, str], bool] = {}

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        key = (type(obj), attr)
        safe = self._safe.get(key)
        if safe is None:
            safe = self._safe[key] = super().is_safe_attribute(obj, attr, value)
        return safe


def compile_template(chat_template: str) -> Template:
    """The template compiled in a `FastSandbox` configured as transformers configures its sandbox."""
    reference = _compile_jinja_template(chat_template).environment
    environment = FastSandbox(
        trim_blocks=reference.trim_blocks,
        lstrip_blocks=reference.lstrip_blocks,
        extensions=[type(extension) for extension in reference.extensions.values()],
    )
    environment.filters.update(reference.filters)
    environment.globals.update(reference.globals)
    return environment.from_string(chat_template)


def render_with_spans(
    template: Template, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, **template_kwargs: Any
) -> tuple[str, list[tuple[int, int]]]:
    """The conversation's text and its `{% generation %}` spans (characters), as
    `render_jinja_template(..., return_assistant_tokens_mask=True)` gives them for plain JSON data
    (which its copying into plain types leaves as it is)."""
    return _render_with_assistant_indices(  # type: ignore[no-any-return]
        template, _alias_reasoning_fields(messages), tools, None, False, **template_kwargs
    )
