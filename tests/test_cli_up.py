"""`tracewheel up` as a person runs it: start, status, SIGTERM; nothing left behind."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracewheel.cli.stack import NATS_PORT, SERVICES, TASK_SITE_PORT, RestartPolicy
from tracewheel.inference.testing import tiny_test_model


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def all_ports(offset: int) -> list[int]:
    ports = [NATS_PORT + offset, TASK_SITE_PORT + offset]
    for spec in SERVICES:
        ports += [spec.grpc_port + offset] + ([spec.http_port + offset] if spec.http_port else [])
    return ports


def free_offset() -> int:
    for _ in range(50):
        offset = random.randrange(1000, 9000)
        if all(port_is_free(p) for p in all_ports(offset)):
            return offset
    raise RuntimeError("no free port range")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie awaiting its parent counts as gone
    status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}/status").exists() else ""
    return "State:\tZ" not in status


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_up_then_sigterm_leaves_no_process_and_frees_every_port(tmp_path: Path) -> None:
    offset = free_offset()
    # the tiny test model keeps start-up to seconds (the default model is converted on first use)
    env = {**os.environ, "TRACEWHEEL_HOME": str(tmp_path), "TW_INFERENCE_MODEL": str(tiny_test_model())}
    cli = [sys.executable, "-m", "tracewheel.cli"]
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen([*cli, "up", "--port-offset", str(offset)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        stack_file = tmp_path / "stack.json"
        wait_for(lambda: stack_file.exists() or up.poll() is not None, 120, "stack.json")
        assert up.poll() is None, (tmp_path / "up.log").read_text()
        stack = json.loads(stack_file.read_text())
        assert set(stack["services"]) == {s.name for s in SERVICES}

        status = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("serving") == len(SERVICES)

        nats_pid = int(
            subprocess.run(
                ["pgrep", "-f", f"nats-server.*-sd {tmp_path}"], capture_output=True, text=True
            ).stdout.split()[0]
        )
        child_pids = [s["pid"] for s in stack["services"].values()] + [nats_pid]
        assert all(pid_alive(pid) for pid in child_pids)

        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 130
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
    wait_for(lambda: not any(pid_alive(pid) for pid in child_pids), 10, "children to exit")
    wait_for(lambda: all(port_is_free(p) for p in all_ports(offset)), 10, "ports to be freed")
    assert not stack_file.exists()
    logs = (tmp_path / "up.log").read_text()
    assert "[dataset] " in logs and "shutting down" in logs

    after = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert after.returncode == 1 and "no stack running" in after.stdout


def test_restart_delays_grow_to_a_cap() -> None:
    policy = RestartPolicy(first_delay_s=1.0, max_delay_s=30.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def _dataset_row(cli: list[str], env: dict[str, str]) -> dict:
    ran = subprocess.run([*cli, "status", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return next(row for row in json.loads(ran.stdout)["services"] if row["service"] == "dataset")


@pytest.mark.slow
def test_a_killed_service_is_started_again_and_counted(tmp_path: Path) -> None:
    offset = free_offset()
    env = {**os.environ, "TRACEWHEEL_HOME": str(tmp_path), "TW_INFERENCE_MODEL": str(tiny_test_model())}
    cli = [sys.executable, "-m", "tracewheel.cli"]
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen([*cli, "up", "--port-offset", str(offset)], env=env, stdout=log, stderr=subprocess.STDOUT)
    stack_file = tmp_path / "stack.json"
    try:
        wait_for(lambda: stack_file.exists() or up.poll() is not None, 120, "stack.json")
        assert up.poll() is None, (tmp_path / "up.log").read_text()
        killed = json.loads(stack_file.read_text())["services"]["dataset"]["pid"]
        os.kill(killed, signal.SIGKILL)  # a crash: no shutdown of its own

        def restarted() -> bool:
            entry = json.loads(stack_file.read_text())["services"]["dataset"]
            return entry["restarts"] == 1 and entry["pid"] != killed

        wait_for(restarted, 60, "the dataset service to be started again")
        wait_for(lambda: _dataset_row(cli, env)["health"] == "serving", 120, "the restarted dataset to be healthy")
        row = _dataset_row(cli, env)
        assert (row["restarts"], row["last_exit"]) == (1, -signal.SIGKILL)
        assert up.poll() is None  # the rest of the stack kept running
        pids = [s["pid"] for s in json.loads(stack_file.read_text())["services"].values()]
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 130
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), 10, "children to exit")
    wait_for(lambda: all(port_is_free(p) for p in all_ports(offset)), 10, "ports to be freed")
    logs = (tmp_path / "up.log").read_text()
    assert "dataset exited with code -9" in logs and "dataset started again (restart 1" in logs
