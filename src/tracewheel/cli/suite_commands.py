"""`tracewheel suites add|list|show|validate|schema`: a team's task suites (docs/suites.md).

`add`, `list` and `show` call the agent (gRPC AddSuite, ListSuites, GetSuite), which keeps the
files; `validate` and `schema` run here, with no service.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from tracewheel.cli.endpoints import connect
from tracewheel.cli.exit_codes import OK, USAGE
from tracewheel.cli.output import emit, print_json, wants_json
from tracewheel.v1 import agent_pb2, agent_pb2_grpc


def add_suites_commands(sub: argparse._SubParsersAction, client: Any) -> None:
    """The `suites` subcommands; `client(parent, name, help)` adds --address and --json."""
    suites = sub.add_parser("suites", help="register and inspect task suites (docs/suites.md)").add_subparsers(
        dest="suites_command", required=True
    )
    add = client(suites, "add", "validate a suite file (YAML or JSONL) and register it with the agent")
    add.add_argument("file")
    add.add_argument("--replace", action="store_true", help="replace a registered suite of the same name")
    client(suites, "list", "list the registered suites (the bundled shop first)")
    show = client(suites, "show", "show a suite's tasks: split, checkers, reference")
    show.add_argument("name")
    validate = suites.add_parser("validate", help="check a suite file here, without registering it")
    validate.add_argument("file")
    validate.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    suites.add_parser("schema", help="print the JSON Schema of a suite file (docs/suite.schema.json)")


def suite_json(info: agent_pb2.SuiteInfo) -> dict[str, Any]:
    """A SuiteInfo as the JSON `--json` prints (tasks only when the answer has them)."""
    data: dict[str, Any] = {
        "name": info.name,
        "description": info.description,
        "source": info.source,
        "train_tasks": info.train_tasks,
        "heldout_tasks": info.heldout_tasks,
        "check_kinds": list(info.check_kinds),
    }
    if info.error:
        data["error"] = info.error
    if info.tasks:
        data["tasks"] = [
            {"id": t.task_id, "split": t.split, "group": t.group, "check_kinds": list(t.check_kinds),
             "has_reference": t.has_reference, "prompt": t.prompt}
            for t in info.tasks
        ]  # fmt: skip
    return data


def _summary(info: agent_pb2.SuiteInfo) -> str:
    kinds = ", ".join(info.check_kinds) or "none"
    return f"{info.name}: {info.train_tasks} train and {info.heldout_tasks} held-out tasks; checkers: {kinds}"


def _problems(text: str) -> int:
    """An invalid file's problems on stderr, one a line (every one is listed), and exit 2."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {text}", markup=False)
    return USAGE


def suites_add(args: argparse.Namespace, console: Console) -> int:
    """Sends the file's text; the agent validates it whole and registers it, or nothing."""
    content = Path(args.file).read_text(encoding="utf-8")
    channel, metadata = connect("agent", args.address)
    request = agent_pb2.AddSuiteRequest(filename=args.file, content=content, replace=args.replace)
    with channel:
        try:
            info = agent_pb2_grpc.AgentStub(channel).AddSuite(request, metadata=metadata, timeout=60)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                return _problems(exc.details() or "")
            raise
    emit(args, console, suite_json(info), f"registered {_summary(info)}")
    return OK


def suites_list(args: argparse.Namespace, console: Console) -> int:
    channel, metadata = connect("agent", args.address)
    with channel:
        stub = agent_pb2_grpc.AgentStub(channel)
        listed = stub.ListSuites(agent_pb2.ListSuitesRequest(), metadata=metadata, timeout=60)
    table = Table(title="suites")
    for column in ("name", "train", "held-out", "checkers", "source"):
        table.add_column(column)
    for info in listed.suites:
        checks = f"[red]{info.error.splitlines()[0]}[/red]" if info.error else ", ".join(info.check_kinds)
        table.add_row(info.name, str(info.train_tasks), str(info.heldout_tasks), checks, info.source)
    emit(args, console, [suite_json(info) for info in listed.suites], table)
    return OK


def suites_show(args: argparse.Namespace, console: Console) -> int:
    channel, metadata = connect("agent", args.address)
    with channel:
        request = agent_pb2.GetSuiteRequest(name=args.name)
        info = agent_pb2_grpc.AgentStub(channel).GetSuite(request, metadata=metadata, timeout=60)
    if wants_json(args):
        print_json({**suite_json(info), "content": info.content})
        return OK
    table = Table(title=_summary(info), caption=f"{info.description}\nsource: {info.source}".strip())
    for column in ("task", "split", "group", "checkers", "reference", "prompt"):
        table.add_column(column, overflow="fold")
    for t in info.tasks:
        prompt = t.prompt if len(t.prompt) <= 80 else t.prompt[:77] + "..."
        reference = "yes" if t.has_reference else "-"
        table.add_row(t.task_id, t.split, t.group or "-", ", ".join(t.check_kinds), reference, prompt)
    console.print(table)
    return OK


def suites_validate(args: argparse.Namespace, console: Console) -> int:
    """Validates here (entry points must import here too); an invalid file exits 2 with every problem."""
    from tracewheel.agent.suites import SuiteFileError, read_suite_file, suite_from_spec

    try:
        suite = suite_from_spec(read_suite_file(Path(args.file)), args.file)
    except SuiteFileError as exc:
        return _problems(str(exc))
    sizes = suite.split_sizes
    summary = {"name": suite.name, "train_tasks": sizes["train"], "heldout_tasks": sizes["heldout"]}
    emit(args, console, summary, f"{args.file} is a valid suite: {suite.name}, {len(suite.tasks)} tasks")
    return OK


def suites_schema(args: argparse.Namespace, console: Console) -> int:
    from tracewheel.agent.suites import suite_json_schema

    print(json.dumps(suite_json_schema(), indent=2, ensure_ascii=False))
    return OK


COMMANDS = {
    "suites add": suites_add,
    "suites list": suites_list,
    "suites show": suites_show,
    "suites validate": suites_validate,
    "suites schema": suites_schema,
}
