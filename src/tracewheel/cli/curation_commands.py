"""Curation and builds from the terminal: traces show, approve, reject, tag, export; dataset list, show.

Every command calls the dataset service's gRPC API (the same store the web UI and REST edit).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

from tracewheel.cli.endpoints import connect
from tracewheel.cli.exit_codes import OK
from tracewheel.cli.output import emit
from tracewheel.cli.progress import Progress
from tracewheel.cli.run_view import CONTENT_CHARS, REASONING_CHARS, shorten
from tracewheel.core.errors import InvalidArgument, NotFound
from tracewheel.core.trace import Trace
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.core.trelis import trace_to_trelis
from tracewheel.v1 import dataset_pb2, dataset_pb2_grpc, events_pb2

STATUS = {"pending": dataset_pb2.CURATION_STATUS_PENDING, "approved": dataset_pb2.CURATION_STATUS_APPROVED,
          "rejected": dataset_pb2.CURATION_STATUS_REJECTED}  # fmt: skip
EXPORT_PAGE_SIZE = 500  # the store's largest page


def status_name(status: dataset_pb2.CurationStatus.ValueType) -> str:
    return dataset_pb2.CurationStatus.Name(status).removeprefix("CURATION_STATUS_").lower()


def curation_json(stored: dataset_pb2.StoredTrace) -> dict[str, Any]:
    """A stored trace's curation state (no trace body)."""
    return {"id": stored.trace.id, "status": status_name(stored.status), "reason": stored.reason,
            "revision": stored.revision, "tags": list(stored.tags), "notes": stored.notes}  # fmt: skip


def build_json(built: events_pb2.DatasetBuilt) -> dict[str, Any]:
    """A dataset build, as `dataset list` / `dataset show` / `dataset build` print it."""
    return {
        "version": built.version,
        "built_at": built.built_at.ToDatetime().isoformat() + "Z" if built.HasField("built_at") else None,
        "path": built.path,
        "base_model": built.base_model,
        "template_sha256": built.template_sha256,
        "train_rows": built.train_rows,
        "eval_rows": built.eval_rows,
        "supervised_tokens": built.supervised_tokens,
        "trace_ids": list(built.trace_ids),
    }


def _stub(args: argparse.Namespace) -> tuple[Any, dataset_pb2_grpc.DatasetStub, tuple[tuple[str, str], ...]]:
    channel, metadata = connect("dataset", args.address)
    return channel, dataset_pb2_grpc.DatasetStub(channel), metadata


def _message_lines(trace: Trace, full: bool) -> Iterator[str]:
    for index, message in enumerate(trace.messages):
        limit = None if full or message.role != "tool" else CONTENT_CHARS
        yield f"[bold][{index}] {message.role}[/bold]" + (f" ({message.name})" if message.name else "")
        if message.reasoning_content:
            reasoning = message.reasoning_content if full else shorten(message.reasoning_content, REASONING_CHARS)
            yield f"  [dim]thinks: {escape(reasoning)}[/dim]"
        if message.content and message.content.strip():
            yield "  " + escape(message.content if limit is None else shorten(message.content, limit))
        for call in message.tool_calls:
            yield f"  -> {call.function.name}({escape(call.function.arguments)})"


def _trace_view(stored: dataset_pb2.StoredTrace, trace: Trace, full: bool) -> Group:
    head = Table.grid(padding=(0, 2))
    outcome = trace.outcome
    for name, value in (
        ("trace", trace.id),
        ("status", status_name(stored.status) + (f" ({stored.reason})" if stored.reason else "")),
        ("revision", str(stored.revision)),
        ("tags", ", ".join(stored.tags) or "-"),
        ("model", trace.model or "-"),
        ("task", f"{trace.task.suite}/{trace.task.task_id}" if trace.task else "-"),
        ("outcome", f"{outcome.verdict.value}: {outcome.final_answer or outcome.detail}" if outcome else "-"),
        ("stopped", trace.metadata.extra.get("stop_reason", "-")),
    ):
        head.add_row(name, escape(value))
    return Group(head, *_judgment_lines(trace, full), *_message_lines(trace, full))


def _judgment_lines(trace: Trace, full: bool) -> Iterator[str]:
    """What each LLM judge of the task answered (with `--full`, what it was asked and its reply)."""
    for judgment in trace.outcome.judgments if trace.outcome else []:
        yield escape(f"judge {judgment.model}: {judgment.verdict.value} (score {judgment.score:g}): {judgment.reason}")
        if full:
            yield "[dim]" + escape(f"  asked: {judgment.prompt}") + "[/dim]"
            yield escape(f"  answered: {judgment.answer or '(nothing)'}")


def traces_show(args: argparse.Namespace, console: Console) -> int:
    channel, stub, metadata = _stub(args)
    with channel:
        stored = stub.GetTrace(dataset_pb2.GetTraceRequest(id=args.id), metadata=metadata)
    trace = trace_from_proto(stored.trace)
    emit(args, console, {**curation_json(stored), "trace": trace.model_dump(mode="json")},
         _trace_view(stored, trace, args.full))  # fmt: skip
    return OK


def traces_curate(args: argparse.Namespace, console: Console) -> int:
    """`traces approve` and `traces reject`: one decision per id, in order; the first refused
    stops the command (the ones before it are decided)."""
    if args.revision is not None and len(args.ids) > 1:
        raise InvalidArgument("--revision names the revision of one trace; give one id with it")
    status = STATUS["approved" if args.traces_command == "approve" else "rejected"]
    decided: list[dict[str, Any]] = []
    channel, stub, metadata = _stub(args)
    with channel:
        for trace_id in args.ids:
            request = dataset_pb2.CurateRequest(id=trace_id, status=status, reason=args.reason or "")
            if args.revision is not None:
                request.base_revision = args.revision
            decided.append(curation_json(stub.Curate(request, metadata=metadata)))
    lines = [f"{row['id']}: {row['status']} (revision {row['revision']})" for row in decided]
    emit(args, console, decided, "\n".join(lines))
    return OK


def traces_tag(args: argparse.Namespace, console: Console) -> int:
    if not args.add and not args.remove:
        raise InvalidArgument("give tags to --add, --remove or both")
    tagged: list[dict[str, Any]] = []
    channel, stub, metadata = _stub(args)
    with channel:
        for trace_id in args.ids:
            stored = stub.Tag(dataset_pb2.TagRequest(id=trace_id, add=args.add, remove=args.remove), metadata=metadata)
            tagged.append(curation_json(stored))
    lines = [f"{row['id']}: {', '.join(row['tags']) or '(no tags)'}" for row in tagged]
    emit(args, console, tagged, "\n".join(lines))
    return OK


def stored_traces(
    stub: dataset_pb2_grpc.DatasetStub, metadata: tuple[tuple[str, str], ...], status: str | None, suite: str | None
) -> Iterator[dataset_pb2.StoredTrace]:
    """Every stored trace under the filters, page after page (newest first)."""
    request = dataset_pb2.ListTracesRequest(status=STATUS.get(status or "", dataset_pb2.CURATION_STATUS_UNSPECIFIED),
                                            suite=suite or "", page_size=EXPORT_PAGE_SIZE)  # fmt: skip
    while True:
        page = stub.ListTraces(request, metadata=metadata)
        yield from page.traces
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


def export_row(stored: dataset_pb2.StoredTrace) -> dict[str, Any]:
    """A parquet row: columns to filter on, and the whole trace as a Trelis JSON string (Arrow
    structs would mangle tool schemas and arguments of mixed types)."""
    trace = trace_from_proto(stored.trace)
    outcome = trace.outcome
    return {
        **curation_json(stored),
        "created_at": trace.created_at.isoformat(),
        "model": trace.model,
        "suite": trace.task.suite if trace.task else "",
        "task_id": trace.task.task_id if trace.task else "",
        "verdict": outcome.verdict.value if outcome else "unspecified",
        "trace": json.dumps(trace_to_trelis(trace), ensure_ascii=False),
    }


def _write_export(path: Path, kind: str, traces: Iterator[dataset_pb2.StoredTrace], progress: Progress) -> int:
    count = 0
    if kind == "jsonl":  # Trelis records, one a line: `tracewheel traces import` reads them back
        with path.open("w", encoding="utf-8") as out:
            for count, stored in enumerate(traces, start=1):
                out.write(json.dumps(trace_to_trelis(trace_from_proto(stored.trace)), ensure_ascii=False) + "\n")
                progress.update(count)
        return count
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for count, stored in enumerate(traces, start=1):
        rows.append(export_row(stored))
        progress.update(count)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return count


def traces_export(args: argparse.Namespace, console: Console) -> int:
    path = Path(args.output)
    channel, stub, metadata = _stub(args)
    with channel, Progress(console, f"exporting to {path}", unit="traces") as progress:
        count = _write_export(path, args.format, stored_traces(stub, metadata, args.status, args.suite), progress)
    summary = {"path": str(path), "format": args.format, "traces": count}
    emit(args, console, summary, f"{count} traces written to {path} ({args.format})")
    return OK


def _builds(args: argparse.Namespace) -> list[events_pb2.DatasetBuilt]:
    channel, stub, metadata = _stub(args)
    with channel:
        return list(stub.ListDatasets(dataset_pb2.ListDatasetsRequest(), metadata=metadata).datasets)


def dataset_list(args: argparse.Namespace, console: Console) -> int:
    builds = [build_json(built) for built in _builds(args)]
    table = Table(title=f"dataset builds ({len(builds)})")
    columns = ("version", "built_at", "traces", "train_rows", "eval_rows", "supervised_tokens")
    for column in columns:
        table.add_column(column)
    for build in builds:
        table.add_row(*(str(len(build["trace_ids"]) if c == "traces" else build[c]) for c in columns))
    emit(args, console, builds, table)
    return OK


def find_build(args: argparse.Namespace, version: str) -> events_pb2.DatasetBuilt:
    """The dataset build `version`, as the dataset service lists it.

    Raises:
        NotFound: the service lists no build of that version.
    """
    found = [built for built in _builds(args) if built.version == version]
    if not found:
        raise NotFound(f"no dataset build {version!r}; `tracewheel dataset list` shows the builds")
    return found[0]


def dataset_show(args: argparse.Namespace, console: Console) -> int:
    build = build_json(find_build(args, args.version))
    view = Table.grid(padding=(0, 2))
    for name, value in build.items():
        view.add_row(name, escape(", ".join(value) if isinstance(value, list) else str(value)))
    emit(args, console, build, view)
    return OK
