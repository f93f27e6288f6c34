"""Task, reference step and target types, and resolving targets to live snapshot refs.

Refs (`[ref=e12]`) exist only in a live ARIA snapshot, so reference solutions name what they
act on by role and accessible name; `resolve_ref` finds the ref in a snapshot taken with
Playwright's `aria_snapshot(mode="ai")` (the format @playwright/mcp returns to the model).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracewheel.core.errors import NotFound

if TYPE_CHECKING:
    from tracewheel.agent.suites.spec import Check


class RefNotFound(NotFound):
    """No element with the wanted role and name is in the snapshot."""


@dataclass(frozen=True)
class Target:
    """An element named the way an ARIA snapshot names it; `nth` picks among equal matches."""

    role: str
    name: str
    nth: int = 0

    def describe(self) -> str:
        """Human-readable element description, as @playwright/mcp's `element` argument wants."""
        return f'{self.role} "{self.name}"'


@dataclass(frozen=True)
class FormField:
    """One field of a `browser_fill_form` step: the element, @playwright/mcp's field type
    (`textbox` for text and number inputs, `combobox` for a select) and the value to set."""

    target: Target
    type: str
    value: str


@dataclass(frozen=True)
class Step:
    """One tool call of a reference solution, with the one-line reasoning that motivates it.

    `arguments` holds everything but `element` and `ref`, which come from `target` against a
    live snapshot (see `call_arguments`); a `browser_fill_form` step has `fields` instead, each
    with its own target.
    """

    tool: str
    arguments: Mapping[str, Any]
    reasoning: str
    target: Target | None = None
    fields: tuple[FormField, ...] = ()

    @property
    def targeted(self) -> bool:
        """Whether the step acts on elements, whose refs only a live snapshot has."""
        return self.target is not None or bool(self.fields)

    def call_arguments(self, snapshot: str | None = None) -> dict[str, Any]:
        """The tool's arguments, with `element` and `ref` (or each field's `ref`) resolved in `snapshot`.

        Raises:
            ValueError: the step acts on elements but no snapshot was given.
            RefNotFound: the target is not in the snapshot.
        """
        if not self.targeted:
            return dict(self.arguments)
        if snapshot is None:
            raise ValueError(f"{self.tool} acts on page elements; pass the current snapshot")
        if self.target is None:  # a form: a ref for each of its fields
            fields = [
                {"name": f.target.name, "type": f.type, "ref": resolve_ref(snapshot, f.target), "value": f.value}
                for f in self.fields
            ]
            return {**self.arguments, "fields": fields}
        ref = resolve_ref(snapshot, self.target)
        return {"element": self.target.describe(), "ref": ref, **self.arguments}


@dataclass(frozen=True)
class Task:
    """One task of a suite: the prompt, its parameters, a reference solution and its checker.

    The reference solution is `reference` (tool calls, each with its thought), then `answer`,
    with `answer_reasoning` as the thought before it.

    For the bundled shop, `params` always holds `skus` (every product the task involves; suites
    are split on them) and `phrasing` (the id of the prompt wording, e.g. `price_lookup/2`), and
    `suite` is its split's name (`train`, `heldout`), as it always was. A task from a suite file
    (`tracewheel.agent.suites`) has its suite's name, and `template` is its `group`.

    `tools` (empty: the agent's default subset), `mcp_servers` and `allowed_hosts` narrow what
    the run may use; `check` is the checker (None: the run is not checked).
    """

    suite: str
    task_id: str
    template: str
    prompt: str
    params: Mapping[str, Any]
    reference: tuple[Step, ...] = field(default=())
    answer: str = ""
    answer_reasoning: str = ""
    split: str = ""
    tools: tuple[str, ...] = ()
    mcp_servers: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    check: Check | None = None

    @property
    def has_reference(self) -> bool:
        """Whether the task has a reference solution to replay as a demonstration."""
        return bool(self.reference or self.answer)


@dataclass(frozen=True)
class Verdict:
    """A checker's result: passed or not, and why (for traces and debugging)."""

    passed: bool
    reason: str

    @property
    def score(self) -> float:
        """1.0 for a pass, 0.0 otherwise."""
        return 1.0 if self.passed else 0.0


_LINE = re.compile(r'^\s*- (?P<role>[a-z]+)(?: (?P<name>"(?:[^"\\]|\\.)*"))?(?P<rest>.*?)\[ref=(?P<ref>[a-z0-9]+)\]')


def _snapshot_elements(snapshot_text: str) -> list[tuple[str, str, str]]:
    """(role, name, ref) of every element line that carries a ref."""
    found = []
    for line in snapshot_text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        quoted = match.group("name")
        name = json.loads(quoted) if quoted else ""
        found.append((match.group("role"), name, match.group("ref")))
    return found


def resolve_ref(snapshot_text: str, target: Target) -> str:
    """The ref (e.g. `e12`, `f1e12`) of the element with `target`'s role and exact name.

    Raises:
        RefNotFound: no such element (or fewer than `target.nth + 1` of them); the message
            lists the names that role does have in the snapshot.
    """
    elements = _snapshot_elements(snapshot_text)
    matches = [ref for role, name, ref in elements if role == target.role and name == target.name]
    if len(matches) > target.nth:
        return matches[target.nth]
    same_role = [name for role, name, _ in elements if role == target.role]
    shown = ", ".join(repr(n) for n in same_role[:10]) or "none"
    raise RefNotFound(
        f"no {target.describe()} (occurrence {target.nth}) in the snapshot; {target.role} names there: {shown}"
    )
