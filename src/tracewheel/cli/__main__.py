"""`tracewheel`: the one front door (local supervisor, demo, client commands)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

import grpc
from rich.console import Console

from tracewheel.cli import client_commands, commands, curation_commands, demo, hub_commands, suite_commands
from tracewheel.cli.curation_commands import STATUS
from tracewheel.cli.exit_codes import INTERRUPTED, local_failure, rpc_failure
from tracewheel.cli.output import console_for
from tracewheel.core.errors import TracewheelError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracewheel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start NATS and every service; Ctrl-C stops them all")
    up.add_argument("--port-offset", type=int, default=0, help="add this to every default port")
    up.add_argument("--health-timeout", type=float, default=120.0, help="seconds to wait for each service")
    sub.add_parser("status", help="show what runs where").add_argument("--json", action="store_true")
    demo = sub.add_parser("demo", help="run the flywheel end to end on the embedded stack")
    demo.add_argument("--quick", action="store_true", help="the tiny test model (CI)")
    demo.add_argument("--port-offset", type=int, default=0)
    demo.add_argument("--health-timeout", type=float, default=300.0, help="seconds to wait for each service")
    demo.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a service setting over the profile's (TW_AGENT_*, TW_RECIPE_*...; repeatable), e.g. "
        "TW_RECIPE_NUM_TRAIN_EPOCHS=5; checked before the stack starts; use a fresh TRACEWHEEL_HOME",
    )
    demo.add_argument(
        "--suite",
        metavar="NAME|FILE",
        help="a suite (a registered name, or a suite file registered when the stack is up) instead of the shop: "
        "the baseline, every round's evaluation and the gate use its held-out split, demonstrations and the "
        "student its train split (docs/suites.md)",
    )
    _add_client_commands(sub)
    return parser


def _client(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand that calls a service: --address and --json."""
    command = sub.add_parser(name, help=help_text)
    command.add_argument("--address", help="gRPC address of the service (default: the local stack)")
    command.add_argument("--json", action="store_true", help="print the result as JSON on stdout (docs/cli.md)")
    return command


def _add_client_commands(sub: argparse._SubParsersAction) -> None:
    run = _client(sub, "run", "run one task with the agent and stream its steps (JSON Lines with --json)")
    run.add_argument("prompt")
    run.add_argument("--approve", action="store_true", help="ask before each tool call")
    run.add_argument("--model", default="", help="default: the agent's (the deploy alias)")
    run.add_argument("--max-steps", type=int, default=0)
    evaluate = _client(sub, "eval", "evaluate a model on a suite, with progress; Ctrl-C cancels it")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument(
        "--suite", default="heldout", help="NAME or NAME:SPLIT (`suites list`; default: the shop's held-out split)"
    )
    evaluate.add_argument("--concurrency", type=int, default=0)
    evaluate.add_argument("--timeout", type=float, default=3600.0)
    evaluate.add_argument("--min-success", type=float, metavar="RATE", help="exit 1 when the success rate is below")
    evaluate.add_argument(
        "--report", nargs="?", const="", metavar="DIR", help="also write the report (report.md, rounds.png, "
        "result.json) to DIR, a new folder; the flag alone: a new folder under <home>/reports (docs/cli.md)"
    )  # fmt: skip
    _add_traces_commands(sub)
    suite_commands.add_suites_commands(sub, _client)
    dataset = sub.add_parser("dataset", help="dataset builds").add_subparsers(dest="dataset_command", required=True)
    build = _client(dataset, "build", "build a dataset from the approved traces now")
    build.add_argument("--timeout", type=float, default=3600.0)
    _client(dataset, "list", "list the dataset builds")
    _client(dataset, "show", "show one dataset build").add_argument("version")
    push = _client(dataset, "push", "push a build's rows (TRL format, its split) and manifest to the Hugging Face Hub")
    push.add_argument("version", help="a build's version (`dataset list`) or a dataset folder")
    _add_push_options(push, required=True)
    train = _client(sub, "train", "start a training job on a dataset, or list jobs")
    train.add_argument("--dataset-path", help="a built dataset directory (default: only list jobs)")
    train.add_argument("--dataset-version")
    train.add_argument("--wait", action="store_true", help="follow the job to its end; Ctrl-C cancels it")
    train.add_argument(
        "--eval-suite", default="", metavar="NAME", help="evaluate and gate the adapter on this suite's held-out split "
        "(default: the trainer's TW_TRAINER_EVAL_SUITE)"
    )  # fmt: skip
    models = _client(sub, "models", "list served models, roll the alias back, explain a deployment decision, "
                     "export an adapter (merged: --merge) or push it to the Hugging Face Hub")  # fmt: skip
    models.add_argument("action", nargs="?", choices=["list", "rollback", "explain", "export", "push"], default="list")
    models.add_argument("name", nargs="?", help="explain: the adapter whose deployment decision to show; "
                        "export, push: an adapter or alias inference serves, or a folder")  # fmt: skip
    models.add_argument("--alias", default="agent")
    _add_export_options(models)


def _add_push_options(command: argparse.ArgumentParser, required: bool) -> None:
    command.add_argument("--repo", required=required, metavar="ORG/NAME", help="the Hub repository (HF_TOKEN)")
    command.add_argument("--private", action="store_true", help="create the repository private")


def _add_export_options(models: argparse.ArgumentParser) -> None:
    models.add_argument("--merge", action="store_true", help="export: merge the adapter into its base model")
    models.add_argument("--dtype", default="bfloat16", help="export --merge: the weights' dtype (default bfloat16)")
    models.add_argument("--out", metavar="DIR", help="export: a new or empty folder to write")
    models.add_argument("--base-model", metavar="DIR", help="export, push: the base model folder, if not the "
                        "one the adapter was trained on")  # fmt: skip
    _add_push_options(models, required=False)


def _add_traces_commands(sub: argparse._SubParsersAction) -> None:
    traces = sub.add_parser("traces", help="import, list, curate and export traces").add_subparsers(
        dest="traces_command", required=True
    )
    importer = _client(traces, "import", "import Trelis files, OpenAI JSONL or an HF dataset on disk")
    importer.add_argument("path")
    lister = _client(traces, "list", "list stored traces")
    lister.add_argument("--status", choices=list(STATUS))
    lister.add_argument("--limit", type=int, default=50)
    show = _client(traces, "show", "show one stored trace: curation state and every message")
    show.add_argument("id")
    show.add_argument("--full", action="store_true", help="tool results and reasoning in full")
    for decision in ("approve", "reject"):
        curate = _client(traces, decision, f"{decision} traces (a person's decision overrides the rules')")
        curate.add_argument("ids", nargs="+", metavar="ID")
        curate.add_argument("--reason", required=decision == "reject", help="shown to the next curator")
        curate.add_argument("--revision", type=int, help="refuse if the trace is no longer at this revision")
    tag = _client(traces, "tag", "add or remove tags")
    tag.add_argument("ids", nargs="+", metavar="ID")
    tag.add_argument("--add", action="append", default=[], metavar="TAG")
    tag.add_argument("--remove", action="append", default=[], metavar="TAG")
    export = _client(traces, "export", "write stored traces to a file (jsonl: importable again; parquet)")
    export.add_argument("--status", choices=list(STATUS))
    export.add_argument("--suite")
    export.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    export.add_argument("--output", "-o", required=True, help="the file to write")


COMMANDS = {
    "up": commands.up,
    "status": commands.status,
    "demo": demo.demo,
    "run": client_commands.run_command,
    "eval": client_commands.eval_command,
    "traces import": client_commands.traces_import,
    "traces list": client_commands.traces_list,
    "traces show": curation_commands.traces_show,
    "traces approve": curation_commands.traces_curate,
    "traces reject": curation_commands.traces_curate,
    "traces tag": curation_commands.traces_tag,
    "traces export": curation_commands.traces_export,
    "dataset build": client_commands.dataset_build,
    "dataset list": curation_commands.dataset_list,
    "dataset show": curation_commands.dataset_show,
    "dataset push": hub_commands.dataset_push,
    "train": client_commands.train_command,
    "models": client_commands.models_command,
    **suite_commands.COMMANDS,
}


def _command_name(args: argparse.Namespace) -> str:
    sub = (
        getattr(args, "traces_command", None)
        or getattr(args, "dataset_command", None)
        or getattr(args, "suites_command", None)
    )
    return f"{args.command} {sub}" if sub else args.command


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    """Runs one command; failures print one line on stderr and exit with its code (exit_codes.py)."""
    args = build_parser().parse_args(argv)
    console = console_for(args)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    # SIGTERM behaves like Ctrl-C, so `finally` blocks stop the children.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = COMMANDS[_command_name(args)](args, console)
    except grpc.RpcError as exc:
        code, line = rpc_failure(exc)
        errors.print(line, markup=False)
    except (TracewheelError, OSError) as exc:
        code, line = local_failure(exc)
        errors.print(line, markup=False)
    except KeyboardInterrupt:
        errors.print("interrupted", markup=False)
        code = INTERRUPTED
    sys.exit(code)


if __name__ == "__main__":
    main()
