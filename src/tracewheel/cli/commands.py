"""The CLI commands. Each takes the parsed arguments and a console and returns an exit code."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from rich.console import Console
from rich.table import Table

from tracewheel.cli.exit_codes import NO, OK
from tracewheel.cli.output import emit
from tracewheel.cli.stack import StackInfo, Supervisor, home_dir, pid_alive
from tracewheel.core.health import check_health

HEALTH_STYLE = {"serving": "green", "not serving": "yellow", "down": "red"}


def _service_rows(info: StackInfo) -> list[dict[str, Any]]:
    rows = []
    for name, service in info.services.items():
        pid, grpc_port, http_port = service["pid"], service["grpc_port"], service["http_port"]
        alive = pid is not None and pid_alive(pid)
        healthy = alive and check_health(f"127.0.0.1:{grpc_port}")
        rows.append({"service": name, "pid": pid, "grpc": f"127.0.0.1:{grpc_port}",
                     "http": f"http://127.0.0.1:{http_port}" if http_port else None,
                     "health": "serving" if healthy else ("not serving" if alive else "down"),
                     "restarts": service.get("restarts", 0), "last_exit": service.get("last_exit")})  # fmt: skip
    return rows


def _status_table(info: StackInfo, rows: list[dict[str, Any]] | None = None) -> Table:
    table = Table(title=f"tracewheel stack (supervisor pid {info.supervisor_pid}, NATS {info.nats_url})")
    for column in ("service", "pid", "gRPC", "HTTP", "health", "restarts", "last exit"):
        table.add_column(column)
    for row in rows if rows is not None else _service_rows(info):
        health = f"[{HEALTH_STYLE[row['health']]}]{row['health']}[/]"
        last_exit = "-" if row["last_exit"] is None else str(row["last_exit"])
        cells = (str(row["pid"]), row["grpc"], row["http"] or "-", health, str(row["restarts"]), last_exit)
        table.add_row(row["service"], *cells)
    return table


def up(args: argparse.Namespace, console: Console) -> int:
    """Runs the stack until SIGTERM or Ctrl-C; a service that dies is started again (stack.RestartPolicy)."""
    home = home_dir()
    supervisor = Supervisor(home, port_offset=args.port_offset, health_timeout_s=args.health_timeout)
    console.print(f"starting the stack in {home} ...")
    info = supervisor.start()
    try:
        console.print(_status_table(info))
        console.print("all services healthy; Ctrl-C or SIGTERM stops them")
        stopped = threading.Event()
        while not stopped.wait(0.5):
            for event in supervisor.watch():
                console.print(f"[yellow]{event}[/yellow]")
        return 0
    finally:
        console.print("stopping ...")
        supervisor.stop()
        console.print("stopped")


def status(args: argparse.Namespace, console: Console) -> int:
    """The stack of this TRACEWHEEL_HOME and each service's health; exit 1 when none runs."""
    info = StackInfo.read(home_dir())
    if info is None or not pid_alive(info.supervisor_pid):
        message = f"no stack running for {home_dir()} (start one with `tracewheel up`)"
        emit(args, console, {"home": str(home_dir()), "running": False}, message)
        return NO
    rows = _service_rows(info)
    data = {"home": str(home_dir()), "running": True, "supervisor_pid": info.supervisor_pid,
            "nats_url": info.nats_url, "services": rows}  # fmt: skip
    emit(args, console, data, _status_table(info, rows))
    return OK
