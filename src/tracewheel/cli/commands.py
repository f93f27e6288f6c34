"""The CLI commands. Each takes the parsed arguments and a console and returns an exit code."""

from __future__ import annotations

import argparse
import threading

from rich.console import Console
from rich.table import Table

from tracewheel.cli.stack import StackInfo, Supervisor, home_dir, pid_alive
from tracewheel.core.health import check_health


def _status_table(info: StackInfo) -> Table:
    table = Table(title=f"tracewheel stack (supervisor pid {info.supervisor_pid}, NATS {info.nats_url})")
    for column in ("service", "pid", "gRPC", "HTTP", "health"):
        table.add_column(column)
    for name, service in info.services.items():
        pid, grpc_port, http_port = service["pid"], service["grpc_port"], service["http_port"]
        alive = pid is not None and pid_alive(pid)
        healthy = alive and check_health(f"127.0.0.1:{grpc_port}")
        health = (
            "[green]serving[/green]" if healthy else ("[yellow]not serving[/yellow]" if alive else "[red]down[/red]")
        )
        table.add_row(
            name, str(pid), f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}" if http_port else "-", health
        )
    return table


def up(args: argparse.Namespace, console: Console) -> int:
    home = home_dir()
    supervisor = Supervisor(home, port_offset=args.port_offset, health_timeout_s=args.health_timeout)
    console.print(f"starting the stack in {home} ...")
    info = supervisor.start()
    try:
        console.print(_status_table(info))
        console.print("all services healthy; Ctrl-C or SIGTERM stops them")
        stopped = threading.Event()
        while not stopped.wait(0.5):
            failed = supervisor.failed_child()
            if failed:
                console.print(f"[red]{failed} exited; stopping the stack[/red]")
                return 1
        return 0
    finally:
        console.print("stopping ...")
        supervisor.stop()
        console.print("stopped")


def status(args: argparse.Namespace, console: Console) -> int:
    info = StackInfo.read(home_dir())
    if info is None or not pid_alive(info.supervisor_pid):
        console.print(f"no stack running for {home_dir()} (start one with `tracewheel up`)")
        return 1
    console.print(_status_table(info))
    return 0
