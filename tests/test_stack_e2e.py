"""The whole embedded stack with the tiny model: a task run through the CLI reaches the trace store.

agent -> gateway (gRPC, real chromium) -> inference (OpenAI HTTP) -> traces.v1.completed (NATS)
-> dataset (durable consumer, SQLite) -> `tracewheel traces list`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracewheel.cli.stack import Supervisor
from tracewheel.inference.testing import tiny_test_model

from .test_cli_up import free_offset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    home = tmp_path_factory.mktemp("stack")
    offset = free_offset()
    saved = dict(os.environ)
    os.environ["TW_INFERENCE_MODEL"] = str(tiny_test_model())
    os.environ["TW_INFERENCE_DEFAULT_MAX_TOKENS"] = "24"
    supervisor = Supervisor(home, port_offset=offset, sink=io.StringIO(), health_timeout_s=120)
    try:
        supervisor.start()
        yield home, offset
    finally:
        supervisor.stop()
        os.environ.clear()
        os.environ.update(saved)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACEWHEEL_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "tracewheel.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_a_task_run_from_the_cli_lands_in_the_trace_store(stack: tuple[Path, int]) -> None:
    home, _ = stack
    models = cli(home, "models")
    assert models.returncode == 0, models.stdout + models.stderr
    assert "agent" in models.stdout and "alias" in models.stdout

    run = cli(home, "run", "Open the shop at http://127.0.0.1 and name one category.", "--max-steps", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    trace_id = next(line.split()[1].rstrip(":") for line in run.stdout.splitlines() if line.startswith("trace "))

    deadline = time.monotonic() + 60
    while True:
        listed = cli(home, "traces", "list", "--json")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        rows = json.loads(listed.stdout)
        if any(row["id"] == trace_id for row in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    (row,) = [row for row in rows if row["id"] == trace_id]
    assert row["messages"] >= 2
    assert "stopped: " in run.stdout  # why the run ended, in words


def test_every_json_output_of_the_stack_parses_whole(stack: tuple[Path, int]) -> None:
    home, _ = stack
    status = cli(home, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert {s["health"] for s in json.loads(status.stdout)["services"]} == {"serving"}
    models = cli(home, "models", "--json")
    assert models.returncode == 0, models.stderr
    assert any(m["name"] == "agent" and m["kind"] == "alias" for m in json.loads(models.stdout))
    run = cli(home, "run", "Open the shop at http://127.0.0.1 and name one category.", "--max-steps", "2", "--json")
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert events[-1]["event"] == "finished" and events[-1]["stopped"] and events[-1]["trace"]["messages"]
