"""Client commands: thin gRPC calls to a running stack (local or remote)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.table import Table

from tracewheel.cli.endpoints import resolve_endpoints
from tracewheel.core.errors import InvalidArgument
from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    dataset_pb2,
    dataset_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    trainer_pb2,
    trainer_pb2_grpc,
)

STATUS = {"pending": 1, "approved": 2, "rejected": 3}


def _channel(service: str, args: argparse.Namespace) -> tuple[grpc.Channel, list[tuple[str, str]]]:
    endpoints = resolve_endpoints({service: getattr(args, "address", None)})
    return grpc.insecure_channel(endpoints.grpc[service]), endpoints.metadata()


def metrics_table(title: str, rows: list[dict]) -> Table:
    table = Table(title=title)
    columns = ["model", "suite", "tasks", "successRate", "validToolCallRate", "rightToolRate", "meanSteps",
               "meanTokens", "meanLatencyS"]  # fmt: skip
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(f"{row.get(c, 0):.3f}" if isinstance(row.get(c, 0), float) else str(row.get(c, "")) for c in columns)
        )
    return table


def eval_command(args: argparse.Namespace, console: Console) -> int:
    channel, metadata = _channel("agent", args)
    with channel:
        request = agent_pb2.EvaluateRequest(model=args.model, suite=args.suite, concurrency=args.concurrency)
        metrics = agent_pb2_grpc.AgentStub(channel).Evaluate(request, metadata=metadata, timeout=args.timeout)
    row = MessageToDict(metrics, always_print_fields_with_no_presence=True)
    console.print(json.dumps(row) if args.json else metrics_table("evaluation", [row]))
    return 0


def run_command(args: argparse.Namespace, console: Console) -> int:
    channel, metadata = _channel("agent", args)
    start = agent_pb2.RunTaskRequest(prompt=args.prompt, model=args.model, max_steps=args.max_steps)
    with channel:
        stub = agent_pb2_grpc.AgentStub(channel)
        if not args.approve:
            events = stub.RunTask(start, metadata=metadata)
        else:
            decisions: list[agent_pb2.ApprovalMessage] = [agent_pb2.ApprovalMessage(start=start)]
            events = stub.RunTaskWithApproval(_approval_requests(decisions), metadata=metadata)
        for event in events:
            kind = event.WhichOneof("kind")
            if kind == "assistant":
                console.print(f"[bold]step {event.step}[/bold] {event.assistant.content or ''}")
                for call in event.assistant.tool_calls:
                    console.print(f"  -> {call.function.name}({call.function.arguments})")
            elif kind == "tool_result":
                console.print(f"  <- {(event.tool_result.content or '')[:300]}")
            elif kind == "approval_needed":
                call = event.approval_needed
                answer = console.input(f"run {call.function.name}({call.function.arguments})? [y/N] ")
                decision = agent_pb2.ApprovalDecision(tool_call_id=call.id, approved=answer.strip().lower() == "y")
                decisions.append(agent_pb2.ApprovalMessage(decision=decision))
            elif kind == "finished":
                outcome = event.finished.outcome
                console.print(f"trace {event.finished.id}: {outcome.final_answer or '(no answer)'}")
    return 0


def _approval_requests(queue: list[agent_pb2.ApprovalMessage]):  # type: ignore[no-untyped-def]
    """Yields the start message, then each decision as the person makes it."""
    import time

    sent = 0
    while True:
        while sent < len(queue):
            yield queue[sent]
            sent += 1
        time.sleep(0.05)


def traces_import(args: argparse.Namespace, console: Console) -> int:
    from tracewheel.dataset.importers import ImportFailure, read_any

    if not Path(args.path).exists():
        raise InvalidArgument(f"{args.path} does not exist")
    channel, metadata = _channel("dataset", args)
    created = duplicates = 0
    failures: list[str] = []
    with channel:
        stub = dataset_pb2_grpc.DatasetStub(channel)
        for item in read_any(Path(args.path)):
            if isinstance(item, ImportFailure):
                failures.append(f"{item.source}: {'; '.join(item.problems)}")
                continue
            reply = stub.IngestTrace(
                dataset_pb2.IngestTraceRequest(trace=trace_to_proto(item.trace)), metadata=metadata
            )
            created += reply.created
            duplicates += not reply.created
    console.print(f"imported {created}, already stored {duplicates}, rejected {len(failures)}")
    for failure in failures:
        console.print(f"  [red]{failure}[/red]")
    return 1 if failures else 0


def traces_list(args: argparse.Namespace, console: Console) -> int:
    channel, metadata = _channel("dataset", args)
    request = dataset_pb2.ListTracesRequest(status=STATUS.get(args.status or "", 0), page_size=args.limit)
    with channel:
        reply = dataset_pb2_grpc.DatasetStub(channel).ListTraces(request, metadata=metadata)
    rows = [
        {"id": t.trace.id, "status": dataset_pb2.CurationStatus.Name(t.status).removeprefix("CURATION_STATUS_").lower(),
         "task": t.trace.task.task_id, "model": t.trace.model, "messages": len(t.trace.messages), "reason": t.reason}
        for t in reply.traces
    ]  # fmt: skip
    if args.json:
        console.print_json(json.dumps(rows))
        return 0
    table = Table(title=f"traces ({len(rows)})")
    for column in ("id", "status", "task", "model", "messages", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("id", "status", "task", "model", "messages", "reason")))
    console.print(table)
    return 0


def dataset_build(args: argparse.Namespace, console: Console) -> int:
    channel, metadata = _channel("dataset", args)
    with channel:
        built = dataset_pb2_grpc.DatasetStub(channel).Build(dataset_pb2.BuildRequest(force=True), metadata=metadata)
    console.print(f"dataset {built.version}: {built.train_rows} train / {built.eval_rows} eval rows, "
                  f"{built.supervised_tokens} supervised tokens, in {built.path}")  # fmt: skip
    return 0


def train_command(args: argparse.Namespace, console: Console) -> int:
    channel, metadata = _channel("trainer", args)
    with channel:
        stub = trainer_pb2_grpc.TrainerStub(channel)
        if args.dataset_path:
            job = stub.StartJob(
                trainer_pb2.StartJobRequest(dataset_version=args.dataset_version or "", dataset_path=args.dataset_path),
                metadata=metadata,
            )
            console.print(f"job {job.id} {trainer_pb2.JobState.Name(job.state)}")
        for job in stub.ListJobs(trainer_pb2.ListJobsRequest(), metadata=metadata).jobs:
            state = trainer_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
            console.print(f"{job.id}  {state:10} {job.dataset_version}  {job.adapter_path or job.error}")
    return 0


def models_command(args: argparse.Namespace, console: Console) -> int:
    channel, metadata = _channel("inference", args)
    with channel:
        stub = inference_pb2_grpc.InferenceControlStub(channel)
        if args.action == "rollback":
            moved = stub.Rollback(inference_pb2.RollbackRequest(alias=args.alias), metadata=metadata)
            console.print(f"{moved.alias} -> {moved.target} (was {moved.previous_target})")
            return 0
        table = Table(title="served models")
        for column in ("name", "kind", "target", "path"):
            table.add_column(column)
        for model in stub.ListModels(inference_pb2.ListModelsRequest(), metadata=metadata).models:
            table.add_row(model.name, model.kind, model.target, model.path)
        console.print(table)
    return 0
