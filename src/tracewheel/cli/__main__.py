"""`tracewheel`: the one front door (local supervisor, demo, client commands)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

import grpc
from rich.console import Console

from tracewheel.cli import client_commands, commands, demo
from tracewheel.core.errors import TracewheelError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracewheel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start NATS and every service; Ctrl-C stops them all")
    up.add_argument("--port-offset", type=int, default=0, help="add this to every default port")
    up.add_argument("--health-timeout", type=float, default=120.0, help="seconds to wait for each service")
    sub.add_parser("status", help="show what runs where")
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
    _add_client_commands(sub)
    return parser


def _add_client_commands(sub: argparse._SubParsersAction) -> None:
    def client(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--address", help="gRPC address of the service (default: the local stack)")
        return command

    run = client("run", "run one task with the agent and stream its steps")
    run.add_argument("prompt")
    run.add_argument("--approve", action="store_true", help="ask before each tool call")
    run.add_argument("--model", default="", help="default: the agent's (the deploy alias)")
    run.add_argument("--max-steps", type=int, default=0)
    evaluate = client("eval", "evaluate a model on a suite")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--suite", default="heldout")
    evaluate.add_argument("--concurrency", type=int, default=0)
    evaluate.add_argument("--timeout", type=float, default=3600.0)
    evaluate.add_argument("--json", action="store_true")
    traces = sub.add_parser("traces", help="import and list traces").add_subparsers(
        dest="traces_command", required=True
    )
    importer = traces.add_parser("import", help="import Trelis files, OpenAI JSONL or an HF dataset on disk")
    importer.add_argument("path")
    importer.add_argument("--address")
    lister = traces.add_parser("list", help="list stored traces")
    lister.add_argument("--status", choices=["pending", "approved", "rejected"])
    lister.add_argument("--limit", type=int, default=50)
    lister.add_argument("--json", action="store_true")
    lister.add_argument("--address")
    dataset = sub.add_parser("dataset", help="dataset builds").add_subparsers(dest="dataset_command", required=True)
    build = dataset.add_parser("build", help="build a dataset from the approved traces now")
    build.add_argument("--address")
    train = client("train", "start a training job on a dataset, or list jobs")
    train.add_argument("--dataset-path", help="a built dataset directory (default: only list jobs)")
    train.add_argument("--dataset-version")
    models = client("models", "list served models or roll the alias back")
    models.add_argument("action", nargs="?", choices=["list", "rollback"], default="list")
    models.add_argument("--alias", default="agent")


COMMANDS = {
    "up": commands.up,
    "status": commands.status,
    "demo": demo.demo,
    "run": client_commands.run_command,
    "eval": client_commands.eval_command,
    "traces import": client_commands.traces_import,
    "traces list": client_commands.traces_list,
    "dataset build": client_commands.dataset_build,
    "train": client_commands.train_command,
    "models": client_commands.models_command,
}


def _command_name(args: argparse.Namespace) -> str:
    sub = getattr(args, "traces_command", None) or getattr(args, "dataset_command", None)
    return f"{args.command} {sub}" if sub else args.command


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    console = Console()
    # SIGTERM behaves like Ctrl-C, so `finally` blocks stop the children.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = COMMANDS[_command_name(args)](args, console)
    except grpc.RpcError as exc:
        console.print(f"[red]error:[/red] {exc.code().name}: {exc.details()}")
        code = 1
    except TracewheelError as exc:
        console.print(f"[red]error:[/red] {exc}")
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
