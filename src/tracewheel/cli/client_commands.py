"""Client commands: thin gRPC calls to a running stack (local or remote)."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from tracewheel.cli.curation_commands import STATUS, build_json, status_name
from tracewheel.cli.demo_report import RoundRow, rounds_markdown, write_report
from tracewheel.cli.endpoints import connect
from tracewheel.cli.exit_codes import NO, OK
from tracewheel.cli.flywheel import follow_suite, interruptible_call, result_json
from tracewheel.cli.models_explain import models_explain
from tracewheel.cli.output import emit, print_json, wants_json
from tracewheel.cli.progress import Progress
from tracewheel.cli.run_view import event_json, show_event
from tracewheel.cli.stack import home_dir
from tracewheel.core.errors import InvalidArgument
from tracewheel.core.evaluation import EvalResult
from tracewheel.core.files import staging_dir
from tracewheel.core.trace import Trace
from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.core.trace_size import TraceTooLarge, check_trace_size, configured_max_trace_bytes, keep_rejected
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

METRIC_COLUMNS = ("model", "suite", "tasks", "success_rate", "valid_tool_call_rate", "right_tool_rate",
                  "mean_steps", "mean_tokens", "mean_latency_s")  # fmt: skip


def metrics_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in METRIC_COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{row.get(c, 0):.3f}" if isinstance(row.get(c, 0), float) else str(row.get(c, ""))
                        for c in METRIC_COLUMNS))  # fmt: skip
    return table


def report_folder(given: str, model: str) -> Path:
    """The folder `--report` names; "" (the flag alone): a new one under `<home>/reports`, where the
    console lists reports.

    Raises:
        InvalidArgument: the folder exists and is not empty (a report never mixes with other files).
    """
    if given:
        folder = Path(given).expanduser().resolve()
    else:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip(".-")[:60] or "model"
        folder = home_dir() / "reports" / f"eval-{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidArgument(f"--report {folder} exists and is not empty: name a new folder")
    return folder


def write_eval_report(folder: Path, result: EvalResult, wall_s: float) -> None:
    """The demo's report of one evaluation: `report.md`, `rounds.png` and `result.json` (the EvalResult
    with its per-task results), written in a staging folder that becomes `folder` only when complete.

    Raises:
        OSError: the folder cannot be written (nothing is left behind).
    """
    rows = [RoundRow(0, result.model, result, wall_s, "-")]
    notes = [f"evaluation: {wall_s:.0f} s of wall time"]
    markdown = rounds_markdown(rows, {"report": str(folder)}, notes, result.suite, "tracewheel eval report",
                               "the suite reference evaluated")  # fmt: skip
    with staging_dir(folder) as staging:
        write_report(staging, rows, markdown, result.model_dump(mode="json"))


def eval_command(args: argparse.Namespace, console: Console) -> int:
    """Evaluates with progress; Ctrl-C cancels the evaluation on the agent. With --min-success,
    a success rate below it exits 1. With --report, the report folder is written (and named) too."""
    folder = report_folder(args.report, args.model) if args.report is not None else None
    started = time.monotonic()
    channel, metadata = connect("agent", args.address)
    evaluate = agent_pb2.EvaluateRequest(model=args.model, suite=args.suite, concurrency=args.concurrency)
    with channel, Progress(console, f"evaluating {args.model} on {args.suite}") as progress:
        stream = agent_pb2_grpc.AgentStub(channel).StreamSuite(
            agent_pb2.SuiteRequest(evaluate=evaluate), metadata=metadata, timeout=args.timeout
        )
        result = follow_suite(stream, lambda done, total: progress.update(done, total=total))
    row = result_json(result.metrics)
    emit(args, console, row, metrics_table("evaluation", [row]))
    if folder is not None:
        write_eval_report(folder, EvalResult.model_validate(row), time.monotonic() - started)
        console.print(f"report: {folder}")
    if args.min_success is not None and row["success_rate"] < args.min_success:
        console.print(f"success rate {row['success_rate']:.3f} is below --min-success {args.min_success:g}")
        return NO
    return OK


def run_command(args: argparse.Namespace, console: Console) -> int:
    """`tracewheel run`: the task's steps as they come (JSON Lines with --json); Ctrl-C cancels the run."""
    channel, metadata = connect("agent", args.address)
    start = agent_pb2.RunTaskRequest(prompt=args.prompt, model=args.model, max_steps=args.max_steps)
    with channel:
        stub = agent_pb2_grpc.AgentStub(channel)
        decisions: list[agent_pb2.ApprovalMessage] = [agent_pb2.ApprovalMessage(start=start)]
        if args.approve:
            events = stub.RunTaskWithApproval(_approval_requests(decisions), metadata=metadata)
        else:
            events = stub.RunTask(start, metadata=metadata)
        try:
            for event in events:
                if wants_json(args):
                    print_json(event_json(event))
                else:
                    show_event(console, event)
                if event.WhichOneof("kind") == "approval_needed":
                    call = event.approval_needed
                    answer = console.input(f"run {call.function.name}({call.function.arguments})? [y/N] ")
                    decision = agent_pb2.ApprovalDecision(tool_call_id=call.id, approved=answer.strip().lower() == "y")
                    decisions.append(agent_pb2.ApprovalMessage(decision=decision))
        except KeyboardInterrupt:
            events.cancel()  # the agent stops the run when its stream is cancelled
            raise
    return OK


def _approval_requests(queue: list[agent_pb2.ApprovalMessage]) -> Iterator[agent_pb2.ApprovalMessage]:
    """Yields the start message, then each decision as the person makes it."""
    sent = 0
    while True:
        while sent < len(queue):
            yield queue[sent]
            sent += 1
        time.sleep(0.05)


def traces_import(args: argparse.Namespace, console: Console) -> int:
    """Reads every item first (so the bar knows the total), then stores them one by one. Each item
    stands alone: a malformed one, one over the size limit (kept in <home>/rejected/) or one the
    service refuses is listed by its source and the next is sent."""
    from tracewheel.dataset.importers import ImportFailure, read_any

    if not Path(args.path).exists():
        raise InvalidArgument(f"{args.path} does not exist")
    items = list(read_any(Path(args.path)))
    channel, metadata = connect("dataset", args.address)
    created = duplicates = 0
    failures: list[str] = []
    with channel, Progress(console, f"importing {args.path}", total=len(items), unit="traces") as progress:
        stub = dataset_pb2_grpc.DatasetStub(channel)
        for done, item in enumerate(items, start=1):
            if isinstance(item, ImportFailure):
                failures.append(f"{item.source}: {'; '.join(item.problems)}")
            else:
                stored, refusal = _send_trace(stub, metadata, item.source, item.trace)
                if refusal:
                    failures.append(f"{item.source}: {refusal}")
                created += stored
                duplicates += not stored and not refusal
            progress.update(done)
    summary = {"imported": created, "already_stored": duplicates, "rejected": failures}
    lines = [f"imported {created}, already stored {duplicates}, rejected {len(failures)}"]
    emit(args, console, summary, "\n".join(lines + [f"  [red]{failure}[/red]" for failure in failures]))
    return NO if failures else OK


def _send_trace(stub: Any, metadata: tuple[tuple[str, str], ...], source: str, trace: Trace) -> tuple[bool, str]:
    """Sends one trace; returns whether it was stored now and, when refused, why ("" otherwise).

    Raises:
        grpc.RpcError: the service failed otherwise (down, unauthenticated): the import stops.
    """
    try:
        check_trace_size(trace, configured_max_trace_bytes())
    except TraceTooLarge as exc:
        kept = keep_rejected(home_dir(), trace.id, trace, f"{source}: {exc}")
        return False, f"{exc} (kept in {kept})"
    try:
        reply = stub.IngestTrace(dataset_pb2.IngestTraceRequest(trace=trace_to_proto(trace)), metadata=metadata)
    except grpc.RpcError as exc:
        if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED):
            return False, f"refused by the dataset service: {exc.details()}"
        raise
    return bool(reply.created), ""


def traces_list(args: argparse.Namespace, console: Console) -> int:
    channel, metadata = connect("dataset", args.address)
    request = dataset_pb2.ListTracesRequest(
        status=STATUS.get(args.status or "", dataset_pb2.CURATION_STATUS_UNSPECIFIED), page_size=args.limit
    )
    with channel:
        reply = dataset_pb2_grpc.DatasetStub(channel).ListTraces(request, metadata=metadata)
    rows = [
        {"id": t.trace.id, "status": status_name(t.status), "task": t.trace.task.task_id, "model": t.trace.model,
         "messages": len(t.trace.messages), "reason": t.reason}
        for t in reply.traces
    ]  # fmt: skip
    table = Table(title=f"traces ({len(rows)})")
    for column in ("id", "status", "task", "model", "messages", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("id", "status", "task", "model", "messages", "reason")))
    emit(args, console, rows, table)
    return OK


def dataset_build(args: argparse.Namespace, console: Console) -> int:
    """Builds now (even below the approved-trace threshold); Ctrl-C cancels the call."""
    channel, metadata = connect("dataset", args.address)
    with channel, Progress(console, "building a dataset from the approved traces", unit="") as progress:
        progress.update()  # the service reports no steps: the bar shows the time so far
        build = dataset_pb2_grpc.DatasetStub(channel).Build
        built = interruptible_call(build, dataset_pb2.BuildRequest(force=True), args.timeout, metadata=metadata)
    emit(args, console, build_json(built),
         f"dataset {built.version}: {built.train_rows} train / {built.eval_rows} eval rows, "
         f"{built.supervised_tokens} supervised tokens, in {built.path}")  # fmt: skip
    return OK


def job_json(job: trainer_pb2.Job) -> dict[str, Any]:
    """A training job, as `train` prints it (evaluations as the agent reports them)."""
    state = trainer_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
    data: dict[str, Any] = {"id": job.id, "state": state, "dataset_version": job.dataset_version,
                            "dataset_path": job.dataset_path, "adapter_path": job.adapter_path, "error": job.error,
                            "init_adapter": job.init_adapter}  # fmt: skip
    for field in ("metrics", "baseline_metrics"):
        data[field] = result_json(getattr(job, field)) if job.HasField(field) else None
    return data


def _follow_job(
    stub: trainer_pb2_grpc.TrainerStub, job_id: str, metadata: tuple[tuple[str, str], ...], console: Console
) -> None:
    """Shows the job's progress until it ends; Ctrl-C cancels the job."""
    stream = None
    try:
        stream = stub.StreamProgress(trainer_pb2.StreamProgressRequest(job_id=job_id), metadata=metadata)
        with Progress(console, f"training job {job_id}", unit="steps", plain_every_s=10.0) as progress:
            for update in stream:
                training = update.phase == "training" and update.total_steps > 0
                note = f"loss {update.loss:.3f}" if training and update.step else update.phase
                # a phase change (evaluating, done) carries no step count: the last one stands
                progress.update(update.step or None, total=update.total_steps or None, note=note,
                                left_s=update.eta_s if training and update.eta_s > 0 else None)  # fmt: skip
    except KeyboardInterrupt:
        if stream is not None:
            stream.cancel()
        stub.CancelJob(trainer_pb2.CancelJobRequest(job_id=job_id), metadata=metadata, timeout=30)
        console.print(f"cancelled training job {job_id}")
        raise


def train_command(args: argparse.Namespace, console: Console) -> int:
    """Starts a job on a built dataset (with --wait: follows it, exit 1 unless it succeeds), or lists jobs."""
    channel, metadata = connect("trainer", args.address)
    with channel:
        stub = trainer_pb2_grpc.TrainerStub(channel)
        if args.dataset_path:
            request = trainer_pb2.StartJobRequest(
                dataset_version=args.dataset_version or "", dataset_path=args.dataset_path, eval_suite=args.eval_suite
            )
            job = stub.StartJob(request, metadata=metadata)
            if args.wait:
                _follow_job(stub, job.id, metadata, console)
                job = next(j for j in stub.ListJobs(trainer_pb2.ListJobsRequest(), metadata=metadata).jobs
                           if j.id == job.id)  # fmt: skip
            started = job_json(job)
            emit(args, console, started, f"job {job.id} {started['state']} {job.adapter_path or job.error}")
            return NO if args.wait and job.state != trainer_pb2.JOB_STATE_SUCCEEDED else OK
        jobs = [job_json(job) for job in stub.ListJobs(trainer_pb2.ListJobsRequest(), metadata=metadata).jobs]
    lines = [f"{job['id']}  {job['state']:10} {job['dataset_version']}  {job['adapter_path'] or job['error']}"
             for job in jobs]  # fmt: skip
    emit(args, console, jobs, "\n".join(lines) or "no training jobs")
    return OK


def models_command(args: argparse.Namespace, console: Console) -> int:
    if args.action == "explain":
        return models_explain(args, console)
    if args.action in ("export", "push"):
        from tracewheel.cli.hub_commands import models_export, models_push

        return (models_export if args.action == "export" else models_push)(args, console)
    channel, metadata = connect("inference", args.address)
    with channel:
        stub = inference_pb2_grpc.InferenceControlStub(channel)
        if args.action == "rollback":
            moved = stub.Rollback(inference_pb2.RollbackRequest(alias=args.alias), metadata=metadata)
            result = {"alias": moved.alias, "target": moved.target, "previous_target": moved.previous_target}
            emit(args, console, result, f"{moved.alias} -> {moved.target} (was {moved.previous_target})")
            return OK
        models = stub.ListModels(inference_pb2.ListModelsRequest(), metadata=metadata).models
    rows = [{"name": m.name, "kind": m.kind, "target": m.target, "path": m.path} for m in models]
    table = Table(title="served models")
    for column in ("name", "kind", "target", "path"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(row[c] for c in ("name", "kind", "target", "path")))
    emit(args, console, rows, table)
    return OK
