"""Reading a suite file (YAML or JSONL) into a `SuiteSpec`, with errors that name the file, the task
and the field.

YAML: one document, the suite (`name`, ..., `tasks: [...]`). JSONL: one task per line; an
optional first line `{"suite": {...}}` holds the suite's own fields (without `tasks`), else the
suite is named after the file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from tracewheel.agent.suites.spec import CHECK_KINDS, AllOf, AnyOf, Judge, SuiteSpec
from tracewheel.core.errors import InvalidArgument

# libyaml's safe loader when PyYAML was built with it: ~3x faster on a 1,000-task suite (bench/suites.py)
_YAML_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
FORMATS = {".yaml": "yaml", ".yml": "yaml", ".jsonl": "jsonl"}
MAX_PROBLEMS = 20


class SuiteFileError(InvalidArgument):
    """A suite file that does not validate; `problems` holds one line per problem.

    Each line reads `FILE: task 'ID': FIELD: what is wrong` (or `FILE: FIELD: ...` for the suite's
    own fields).
    """

    def __init__(self, filename: str, problems: Sequence[str]) -> None:
        self.filename = filename
        self.problems = list(problems)
        shown = self.problems[:MAX_PROBLEMS]
        more = len(self.problems) - len(shown)
        text = "\n".join(shown) + (f"\n... and {more} more" if more else "")
        super().__init__(f"{filename} is not a valid suite ({len(self.problems)} problem(s)):\n{text}")


def suite_format(filename: str) -> str:
    """`yaml` or `jsonl`, from the file's extension.

    Raises:
        SuiteFileError: another extension.
    """
    fmt = FORMATS.get(Path(filename).suffix.lower())
    if fmt is None:
        raise SuiteFileError(filename, [f"{filename}: a suite file ends in .yaml, .yml or .jsonl"])
    return fmt


def _field_path(loc: Sequence[Any]) -> str:
    """`check.checks[1].pattern` from pydantic's loc (which names the check kind it tried)."""
    parts: list[str] = []
    for index, item in enumerate(loc):
        after_check = index > 0 and (loc[index - 1] == "check" or isinstance(loc[index - 1], int))
        if isinstance(item, str) and item in CHECK_KINDS and after_check and index + 1 < len(loc):
            continue  # the discriminated union's tag, not a field
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "(the suite)"


def _message(error: ErrorDetails) -> str:
    if error["type"] == "union_tag_invalid":
        tag = (error.get("ctx") or {}).get("tag", "?")
        return f"no checker kind {tag!r}; known kinds: {', '.join(CHECK_KINDS)}"
    if error["type"] == "union_tag_not_found":
        return f"a checker needs `kind`, one of: {', '.join(CHECK_KINDS)}"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


def _problems(filename: str, error: ValidationError, data: Any, task_lines: Sequence[int] | None) -> list[str]:
    tasks = data.get("tasks") if isinstance(data, dict) else None
    problems = []
    for item in error.errors():
        loc = item["loc"]
        where = ""
        if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int):
            task = tasks[loc[1]] if isinstance(tasks, list) and loc[1] < len(tasks) else None
            task_id = task.get("id") if isinstance(task, dict) else None
            line = f" (line {task_lines[loc[1]]})" if task_lines else ""
            where = f"task {task_id!r}{line}: " if task_id else f"task #{loc[1] + 1}{line}: "
            loc = loc[2:]
        problems.append(f"{filename}: {where}{_field_path(loc)}: {_message(item)}")
    return problems


def _duplicates(filename: str, spec: SuiteSpec) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for index, task in enumerate(spec.tasks):
        if task.id in seen:
            problems.append(f"{filename}: task {task.id!r}: id: duplicate of task #{seen[task.id] + 1}")
        seen.setdefault(task.id, index)
    return problems


def _judges_without_endpoint(check: Any, path: str) -> list[str]:
    if isinstance(check, Judge) and check.endpoint is None:
        return [path]
    if isinstance(check, AllOf | AnyOf):
        return [p for i, part in enumerate(check.checks) for p in _judges_without_endpoint(part, f"{path}.checks[{i}]")]
    return []


def _judges(filename: str, spec: SuiteSpec) -> list[str]:
    """A judge needs an endpoint: its own or the suite's `judge`."""
    if spec.judge is not None:
        return []
    return [
        f"{filename}: task {task.id!r}: {path}.endpoint: a judge needs a model: give the check an `endpoint` "
        "or the suite a `judge`"
        for task in spec.tasks
        for path in _judges_without_endpoint(task.check, "check")
    ]


def _read_jsonl(filename: str, text: str) -> tuple[dict[str, Any], list[int]]:
    suite: dict[str, Any] = {"name": Path(filename).stem}
    tasks: list[Any] = []
    lines: list[int] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{filename}: line {number}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        if isinstance(item, dict) and set(item) == {"suite"} and not tasks:
            if not isinstance(item["suite"], dict) or "tasks" in item["suite"]:
                problems.append(f"{filename}: line {number}: `suite` holds the suite's fields, without tasks")
                continue
            suite = {"name": suite["name"], **item["suite"]}
        else:
            tasks.append(item)
            lines.append(number)
    if problems:
        raise SuiteFileError(filename, problems)
    return {**suite, "tasks": tasks}, lines


def parse_suite(text: str, filename: str) -> SuiteSpec:
    """The suite `text` holds, in the format `filename`'s extension names.

    Entry points of `python` checks are imported and regular expressions compiled here, so a
    suite that parses runs.

    Raises:
        SuiteFileError: not YAML/JSONL, an unknown field or checker kind, a regex that does not
            compile, an entry point that does not import, duplicate task ids...; every problem
            found is listed, each naming the file, the task and the field.
    """
    task_lines = None
    if suite_format(filename) == "jsonl":
        data, task_lines = _read_jsonl(filename, text)
    else:
        try:
            data = yaml.load(text, Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            raise SuiteFileError(filename, [f"{filename}: not YAML: {' '.join(str(exc).split())}"]) from None
        if not isinstance(data, dict):
            raise SuiteFileError(filename, [f"{filename}: a suite is a mapping with `name` and `tasks`"])
    try:
        spec = SuiteSpec.model_validate(data)
    except ValidationError as exc:
        raise SuiteFileError(filename, _problems(filename, exc, data, task_lines)) from None
    problems = _duplicates(filename, spec) + _judges(filename, spec)
    if problems:
        raise SuiteFileError(filename, problems)
    return spec


def read_suite_file(path: Path) -> SuiteSpec:
    """`parse_suite` on a file.

    Raises:
        SuiteFileError: see `parse_suite`.
        OSError: the file cannot be read.
    """
    return parse_suite(path.read_text(encoding="utf-8"), str(path))


def dump_suite(spec: SuiteSpec) -> str:
    """The suite as YAML (what the registry keeps)."""
    return yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=True), sort_keys=False, allow_unicode=True)
