"""`tracewheel`: the one front door (local supervisor, demo, client commands)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from rich.console import Console

from tracewheel.cli import commands
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
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    console = Console()
    # SIGTERM behaves like Ctrl-C, so `finally` blocks stop the children.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = {"up": commands.up, "status": commands.status, "demo": commands.demo}[args.command](args, console)
    except TracewheelError as exc:
        console.print(f"[red]error:[/red] {exc}")
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
