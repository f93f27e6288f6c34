"""A suite as the agent runs it: named tasks in splits, from a file or generated (the bundled shop).

Every suite is a `Suite` of `tracewheel.agent.tasks.Task`s, each with its checker; evaluation,
demonstrations, curation and the gate see no difference between the shop and a team's file.

A suite is named in requests as `NAME` or `NAME:SPLIT` (`SuiteRef`). The shop's splits keep the
names they always had, `train` and `heldout`, as references of their own (`heldout` is
`shop:heldout`), so earlier evaluations stay comparable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from tracewheel.agent.suites.spec import (
    SPLITS,
    AllOf,
    AnyOf,
    Check,
    Judge,
    JudgeEndpoint,
    StepSpec,
    SuiteSpec,
    TaskSpec,
)
from tracewheel.agent.tasks.model import FormField, Step, Target, Task
from tracewheel.core.errors import InvalidArgument, NotFound

SHOP = "shop"
LEGACY_SHOP_REFS = ("train", "heldout")
"""References that name a split of the shop alone, as before suites were registered."""
Split = Literal["train", "heldout"]


@dataclass(frozen=True)
class SuiteRef:
    """A suite and, optionally, one of its splits (None: the caller's default)."""

    name: str
    split: str | None = None

    @classmethod
    def parse(cls, text: str) -> SuiteRef:
        """`NAME`, `NAME:SPLIT`, or the shop's own `train` / `heldout`.

        Raises:
            InvalidArgument: an empty name, or a split other than train or heldout.
        """
        text = text.strip()
        if text in LEGACY_SHOP_REFS:
            return cls(SHOP, text)
        name, _, split = text.partition(":")
        if not name:
            raise InvalidArgument(f"suite reference {text!r}: write NAME or NAME:SPLIT (split train or heldout)")
        if split and split not in SPLITS:
            raise InvalidArgument(f"suite reference {text!r}: split {split!r} is neither train nor heldout")
        return cls(name, split or None)

    def with_default(self, split: Split) -> SuiteRef:
        """This reference, with `split` when it names none."""
        return self if self.split else SuiteRef(self.name, split)

    def __str__(self) -> str:
        if self.name == SHOP and self.split in LEGACY_SHOP_REFS:
            return self.split  # the name evaluations of the shop were always recorded under
        return f"{self.name}:{self.split}" if self.split else self.name


@dataclass(frozen=True)
class Suite:
    """Tasks with their splits and checkers.

    Attributes:
        name: the registered name.
        description: for people.
        tasks: every task, in the suite's order.
        source: `bundled`, or the registered file it was read from.
        reset_url: POSTed once before a run of the suite (None: nothing to reset).
    """

    name: str
    tasks: tuple[Task, ...]
    description: str = ""
    source: str = "bundled"
    reset_url: str | None = None
    split_sizes: dict[str, int] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        sizes = {split: sum(t.split == split for t in self.tasks) for split in SPLITS}
        object.__setattr__(self, "split_sizes", sizes)

    def tasks_of(self, split: str | None) -> list[Task]:
        """The tasks of one split (None: all of them).

        Raises:
            NotFound: the split has no task.
        """
        tasks = [t for t in self.tasks if split is None or t.split == split]
        if not tasks:
            raise NotFound(f"suite {self.name!r} has no {split} task")
        return tasks

    def task(self, task_id: str) -> Task:
        """Raises:
        NotFound: no such task.
        """
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        raise NotFound(f"suite {self.name!r} has no task {task_id!r}")


def hashed_split(suite: str, task_id: str, heldout_share: float) -> Split:
    """A task's split from a stable hash of its suite and id: heldout for about `heldout_share` of ids,
    unchanged as tasks are added or removed."""
    digest = hashlib.sha256(f"{suite}\x00{task_id}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < heldout_share else "train"


def with_default_judge(check: Check, endpoint: JudgeEndpoint | None) -> Check:
    """`check` with `endpoint` given to every judge that names none."""
    if endpoint is None:
        return check
    if isinstance(check, Judge) and check.endpoint is None:
        return check.model_copy(update={"endpoint": endpoint})
    if isinstance(check, AllOf | AnyOf):
        return check.model_copy(update={"checks": [with_default_judge(c, endpoint) for c in check.checks]})
    return check


def _step(spec: StepSpec) -> Step:
    target = Target(spec.target.role, spec.target.name, spec.target.nth) if spec.target else None
    fields = tuple(FormField(Target(f.role, f.name), f.type, f.value) for f in spec.fields)
    return Step(spec.tool, dict(spec.arguments), spec.reasoning, target, fields)


def _prompt(task: TaskSpec) -> str:
    if task.start_url and task.start_url not in task.prompt:
        return f"{task.prompt}\n\nStart at {task.start_url}"
    return task.prompt


def _task(suite: SuiteSpec, spec: TaskSpec) -> Task:
    reference = spec.reference
    return Task(
        suite=suite.name,
        task_id=spec.id,
        template=spec.group,
        prompt=_prompt(spec),
        params={},
        reference=tuple(_step(s) for s in reference.steps) if reference else (),
        answer=reference.answer if reference else "",
        answer_reasoning=reference.answer_reasoning if reference else "",
        split=spec.split or hashed_split(suite.name, spec.id, suite.heldout_share),
        tools=tuple(spec.tools),
        mcp_servers=tuple(spec.mcp_servers),
        allowed_hosts=tuple(spec.allowed_hosts),
        check=with_default_judge(spec.check, suite.judge),
    )


def suite_from_spec(spec: SuiteSpec, source: str) -> Suite:
    """The runnable suite a validated file describes."""
    tasks = tuple(_task(spec, task) for task in spec.tasks)
    return Suite(spec.name, tasks, spec.description, source, spec.reset_url)
