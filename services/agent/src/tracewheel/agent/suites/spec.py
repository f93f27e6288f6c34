"""The suite file: one pydantic model for a YAML or JSONL suite (docs/suites.md, docs/suite.schema.json).

A suite is a list of tasks, each with a prompt, where it starts, what it may use, its split, an
optional reference solution, and a checker. A checker is one of the kinds below, named by its
`kind`; `all` and `any` combine them. Unknown fields are refused everywhere, so a typo is an
error that names the field, not a check silently skipped.
"""

from __future__ import annotations

import importlib
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
SPLITS = ("train", "heldout")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"the regular expression {pattern!r} does not compile: {exc}") from None
    return pattern


class Equals(_Spec):
    """The final answer equals `value` (surrounding whitespace and runs of spaces ignored)."""

    kind: Literal["equals"]
    value: str
    case_sensitive: bool = Field(default=False, description="Compare letter case too.")


class Contains(_Spec):
    """The final answer contains `value`."""

    kind: Literal["contains"]
    value: str = Field(min_length=1)
    case_sensitive: bool = Field(default=False, description="Compare letter case too.")


class Regex(_Spec):
    """The final answer matches the regular expression `pattern` (Python syntax, searched anywhere)."""

    kind: Literal["regex"]
    pattern: str
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        return _compiles(value)


class Number(_Spec):
    """Some number written in the final answer is within `tolerance` of `value` (`1,234.5` reads as 1234.5)."""

    kind: Literal["number"]
    value: float
    tolerance: float = Field(default=0.0, ge=0, description="Absolute tolerance.")


class JsonSubset(_Spec):
    """The final answer is JSON (or holds a JSON object or array) that contains `value`: every key of
    an object, with a matching value; every item of a list, matched by some item."""

    kind: Literal["json_subset"]
    value: Any


class PageUrl(_Spec):
    """The URL of the page the run ended on matches `pattern` (searched anywhere)."""

    kind: Literal["page_url"]
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        return _compiles(value)


class PageText(_Spec):
    """The final page's text (its accessibility snapshot) contains `contains`, or matches `pattern`."""

    kind: Literal["page_text"]
    contains: str | None = None
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return None if value is None else _compiles(value)


class PageField(_Spec):
    """The value of an element on the final page (a textbox's text, a combobox's choice), found by its
    ARIA role and accessible name, equals `equals` (or contains `contains`)."""

    kind: Literal["page_field"]
    role: str
    name: str
    equals: str | None = None
    contains: str | None = None


class HttpJson(_Spec):
    """After the run, GET `url`; the JSON at `path` (`orders[0].sku`, `items[*].id`; empty: the whole
    document) equals `equals`, contains `subset` (as json_subset), or as text matches `pattern`.
    With none of them, the path must exist. With `[*]`, one of the values must match."""

    kind: Literal["http_json"]
    url: str = Field(pattern=r"^https?://")
    path: str = ""
    equals: Any = None
    subset: Any = None
    pattern: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return None if value is None else _compiles(value)


class Python(_Spec):
    """A function `module:function` called with a `CheckContext` (sync or async); it returns a bool, a
    `(bool, reason)` pair or a `CheckResult`. It is imported when the suite is added."""

    kind: Literal["python"]
    entry_point: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    params: dict[str, Any] = Field(default_factory=dict, description="Given to the function as context.params.")

    @field_validator("entry_point")
    @classmethod
    def _imports(cls, value: str) -> str:
        resolve_entry_point(value)
        return value


def resolve_entry_point(entry_point: str) -> Any:
    """The callable `module:function` names.

    Raises:
        ValueError: the module does not import, or has no such callable.
    """
    module_name, _, attribute = entry_point.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is the same bad input: say which and why
        raise ValueError(f"{module_name!r} does not import: {type(exc).__name__}: {exc}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"{module_name!r} has no callable {attribute!r}")
    return function


class JudgeEndpoint(_Spec):
    """An OpenAI-compatible chat endpoint and model that judges runs (at temperature 0)."""

    base_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="e.g. http://127.0.0.1:8000/v1; default: the agent's own inference server.",
    )
    model: str = Field(min_length=1)
    api_key_env: str | None = Field(
        default=None, description="Environment variable of the agent holding the API key (never the key itself)."
    )
    timeout_s: float = Field(default=60.0, gt=0)
    max_tokens: int = Field(default=512, ge=16)


class Judge(_Spec):
    """An LLM judge reads the task, the run's tool calls and final answer (and the final page's URL) and
    answers verdict, score and reason against `rubric`. Its prompt and answer are kept in the trace."""

    kind: Literal["judge"]
    rubric: str = Field(min_length=1)
    endpoint: JudgeEndpoint | None = Field(default=None, description="Default: the suite's `judge`.")
    min_score: float | None = Field(
        default=None, ge=0, le=1, description="Also require this score for a pass (default: the verdict alone)."
    )


class AllOf(_Spec):
    """Passes when every check passes; an error in any is an error (never a pass)."""

    kind: Literal["all"]
    checks: list[Check] = Field(min_length=1)


class AnyOf(_Spec):
    """Passes when some check passes; else an error if any check errored, else a failure."""

    kind: Literal["any"]
    checks: list[Check] = Field(min_length=1)


Check = Annotated[
    Equals
    | Contains
    | Regex
    | Number
    | JsonSubset
    | PageUrl
    | PageText
    | PageField
    | HttpJson
    | Python
    | Judge
    | AllOf
    | AnyOf,
    Field(discriminator="kind"),
]
CHECK_KINDS = ("equals", "contains", "regex", "number", "json_subset", "page_url", "page_text", "page_field",
               "http_json", "python", "judge", "all", "any")  # fmt: skip
AllOf.model_rebuild()
AnyOf.model_rebuild()


class TargetSpec(_Spec):
    """An element by ARIA role and accessible name; `nth` picks among equal ones."""

    role: str
    name: str
    nth: int = Field(default=0, ge=0)


class FormFieldSpec(_Spec):
    """One field of a `browser_fill_form` step."""

    role: str
    name: str
    type: Literal["textbox", "checkbox", "radio", "combobox", "slider"] = "textbox"
    value: str


class StepSpec(_Spec):
    """One tool call of a reference solution. `target` (or `fields`) is resolved to a live ref in the
    page's snapshot when the reference is replayed."""

    tool: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    reasoning: str = Field(default="", description="The thought before the call, as the demonstration shows it.")
    target: TargetSpec | None = None
    fields: list[FormFieldSpec] = Field(default_factory=list)


class ReferenceSpec(_Spec):
    """A reference solution: tool calls, then the answer. Replayed as demonstrations (train split only)."""

    steps: list[StepSpec] = Field(default_factory=list)
    answer: str
    answer_reasoning: str = ""


class TaskSpec(_Spec):
    """One task of a suite."""

    id: str = Field(pattern=NAME_PATTERN, description="Unique in the suite; stable (it decides a hashed split).")
    prompt: str = Field(min_length=1)
    start_url: str | None = Field(default=None, pattern=r"^https?://", description="Named in the prompt to start at.")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Hosts (`host` or `host:port`) the agent may navigate to; empty: any."
    )
    mcp_servers: list[str] = Field(
        default_factory=list, description="External MCP servers of the gateway whose tools are offered too."
    )
    tools: list[str] = Field(default_factory=list, description="The tools offered (empty: the agent's default).")
    split: Literal["train", "heldout"] | None = Field(
        default=None, description="Default: by a stable hash of the id (the suite's heldout_share)."
    )
    group: str = Field(default="", description="Reported per group, as the shop's task templates are.")
    reference: ReferenceSpec | None = None
    check: Check


class SuiteSpec(_Spec):
    """A suite file."""

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    description: str = ""
    heldout_share: float = Field(
        default=0.3, ge=0, le=1, description="Share of tasks without a split that hash to heldout."
    )
    judge: JudgeEndpoint | None = Field(default=None, description="The default endpoint of `judge` checks.")
    reset_url: str | None = Field(
        default=None, pattern=r"^https?://", description="POSTed once before a suite runs (e.g. clears orders)."
    )
    tasks: list[TaskSpec] = Field(min_length=1)


def suite_json_schema() -> dict[str, Any]:
    """The JSON Schema of a suite file (docs/suite.schema.json)."""
    schema = SuiteSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tracewheel task suite"
    return schema
