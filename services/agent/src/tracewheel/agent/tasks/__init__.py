"""Task suites for the task site: templates, checkers, reference solutions, train/heldout split."""

from tracewheel.agent.tasks.model import RefNotFound, Step, Target, Task, Verdict, resolve_ref
from tracewheel.agent.tasks.suites import SUITES, check_task, load_suite, slice_tasks, split_items
from tracewheel.agent.tasks.templates import TEMPLATES, Template

__all__ = [
    "SUITES",
    "TEMPLATES",
    "RefNotFound",
    "Step",
    "Target",
    "Task",
    "Template",
    "Verdict",
    "check_task",
    "load_suite",
    "resolve_ref",
    "slice_tasks",
    "split_items",
]
