"""Faults under `tracewheel up`: a burst of traces while services are SIGKILLed, OpenAI load, browser sessions.

Run: `.venv/bin/python bench/faults.py [--traces 1000] [--load-seconds 120] [--browser-s 60]` (loopback
only; a temporary TRACEWHEEL_HOME, the tiny test model). It prints these tables:
1. kills: `--traces` traces published on NATS (as the agent's user, Msg-Id = trace id) at a steady rate
   while dataset, inference and mcp-gateway are each SIGKILLed mid-flight, and the trainer once a job
   has saved a checkpoint; the supervisor restarts them; counts published, stored, duplicated (stored
   more than once), lost, and restarts. One trace in 20 is approved (faults_training.py), so builds and
   jobs run meanwhile: builds finished, jobs by state, and the step the killed job resumed from.
2. load: 20 concurrent OpenAI clients for `--load-seconds`: requests, p50/p99, errors, 429s, and the
   inference process's RSS at the start, halfway (after warm-up) and at the end, with the growth over
   the second half (the issue's figure: < 5 % over the second 60 s).
3. browser: 8 gateway sessions navigating and snapshotting for `--browser-s`, then closed; the stack's
   processes (chromium included) counted before and after, and none left once `up` has stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faults_training
import httpx

from tracewheel.agent.gateway_client import GatewayClient
from tracewheel.cli.stack import NATS_PORT, SERVICES, TASK_SITE_PORT
from tracewheel.core.events import SUBJECT_TRACE_COMPLETED, connect, publish
from tracewheel.core.settings import NatsOptions
from tracewheel.core.trace import validate_trace
from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.inference.testing import tiny_test_model
from tracewheel.v1 import events_pb2

SCHEDULED = ("dataset", "inference", "mcp-gateway")  # at fixed times; the trainer once a job has a checkpoint
KILLED = (*SCHEDULED, "trainer")
PORTS = {spec.name: (spec.grpc_port, spec.http_port) for spec in SERVICES}


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def _stack(home: Path) -> dict[str, Any]:
    try:
        return json.loads((home / "stack.json").read_text())["services"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return {}


def _descendants(root: int) -> set[int]:
    """Every live process under `root` (from /proc), chromium and its helpers included."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _trace(n: int) -> Any:
    return validate_trace(
        {
            "id": f"fault-{n:05d}",
            "messages": [
                {"role": "user", "content": f"What is item {n}?"},
                {"role": "assistant", "content": f"Item {n} is a teapot."},
            ],
            "task": {"suite": "faults", "task_id": f"t{n}", "prompt": f"What is item {n}?"},
            "outcome": {"verdict": "passed", "score": 1.0} if faults_training.approved(n) else None,
        }
    )


async def _publish_burst(home: Path, offset: int, count: int, duration_s: float) -> int:
    passwords = json.loads((home / "nats" / "passwords.json").read_text())
    options = NatsOptions(
        nats_url=f"nats://127.0.0.1:{NATS_PORT + offset}", nats_user="agent", nats_password=passwords["agent"]
    )
    nc, js = await connect(options.nats_url, "bench-faults", options)
    published = 0
    try:
        for n in range(count):
            payload = events_pb2.TraceCompleted(trace=trace_to_proto(_trace(n)))
            for _attempt in range(30):  # a publish during a NATS hiccup is retried, as the agent does
                try:
                    await publish(js, SUBJECT_TRACE_COMPLETED, payload, f"fault-{n:05d}")
                    published += 1
                    break
                except Exception:
                    await asyncio.sleep(0.5)
            await asyncio.sleep(duration_s / count)
    finally:
        await nc.close()
    return published


def _kill_schedule(home: Path, duration_s: float) -> tuple[list[tuple[str, int]], str]:
    """Kills the scheduled services during the burst, then the trainer mid-job: the kills and that job."""
    killed = []
    for name in SCHEDULED:
        time.sleep(duration_s / (len(SCHEDULED) + 1))  # spread over the burst: each kill lands mid-flight
        pid = _stack(home)[name]["pid"]
        os.kill(pid, signal.SIGKILL)
        killed.append((name, pid))
    pid, job = faults_training.kill_trainer_mid_job(home, lambda: _stack(home)["trainer"]["pid"], 300)
    return [*killed, ("trainer", pid)], job


def _stored_ids(offset: int) -> Counter[str]:
    ids: Counter[str] = Counter()
    token = ""
    with httpx.Client(base_url=f"http://127.0.0.1:{PORTS['dataset'][1] + offset}", timeout=30) as client:
        while True:
            page = client.get("/api/traces", params={"page_size": 200, "page_token": token}).json()
            ids.update(t["trace"]["id"] for t in page["traces"] if t["trace"]["id"].startswith("fault-"))
            token = page["next_page_token"]
            if not token:
                return ids


def kills(home: Path, offset: int, count: int) -> None:
    duration_s = max(10.0, count / 100)
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        publishing = pool.submit(asyncio.run, _publish_burst(home, offset, count, duration_s))
        killed, killed_job = _kill_schedule(home, duration_s)
        published = publishing.result()
    for name, pid in killed:
        _wait(lambda n=name, p=pid: _stack(home)[n]["pid"] != p, 120, f"{name} to be started again")
    _wait(lambda: _healthy(offset, "dataset"), 180, "the dataset's REST API")
    stored: Counter[str] = Counter()

    def all_stored() -> bool:
        nonlocal stored
        stored = _stored_ids(offset)
        return len(stored) >= published

    try:
        _wait(all_stored, 180, "every published trace to be stored")
    except TimeoutError as exc:
        print(f"  ({exc})")
    restarts = {name: _stack(home)[name]["restarts"] for name in KILLED}
    print(f"\n## kills: {count} traces in {duration_s:.0f} s, each of {', '.join(KILLED)} SIGKILLed once mid-flight")
    print(f"(the trainer {'in job ' + killed_job if killed_job else 'with no checkpoint saved in time'})")
    print("| published | stored | duplicated | lost | restarts | seconds to all stored |\n|---|---|---|---|---|---|")
    duplicated = sum(n - 1 for n in stored.values() if n > 1)
    lost = published - len(stored)
    print(f"| {published} | {len(stored)} | {duplicated} | {lost} | {restarts} | {time.monotonic() - started:.0f} |")
    if not faults_training.wait_for_jobs(home, 300):
        print("  (timed out after 300 s waiting for every training job to end)")
    faults_training.report(home, home / "up.log", killed_job)


def _healthy(offset: int, name: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{PORTS[name][1] + offset}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def _client(url: str, until: float, latencies: list[float], statuses: Counter[str]) -> None:
    body = {"model": "agent", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
    async with httpx.AsyncClient(timeout=60) as client:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                response = await client.post(url, json=body)
                statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    latencies.append(time.monotonic() - started)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1


def load(home: Path, offset: int, seconds: float, clients: int = 20) -> None:
    _wait(lambda: _healthy(offset, "inference"), 300, "inference")
    pid = _stack(home)["inference"]["pid"]
    url = f"http://127.0.0.1:{PORTS['inference'][1] + offset}/v1/chat/completions"
    rss = [_rss_mib(pid)]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()

    async def halfway() -> None:  # the first half is warm-up; growth is measured over the second
        await asyncio.sleep(seconds / 2)
        rss.append(_rss_mib(pid))

    async def run() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(halfway(), *(_client(url, until, latencies, statuses) for _ in range(clients)))

    asyncio.run(run())
    rss.append(_rss_mib(pid))
    latencies.sort()
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")
    errors = sum(n for status, n in statuses.items() if status not in ("200", "429"))
    print(f"\n## load: {clients} concurrent OpenAI clients for {seconds:.0f} s (max_tokens 8)")
    print("| requests | ok | p50 s | p99 s | errors | 429s | RSS start / half / end MiB | growth, second half |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {sum(statuses.values())} | {statuses['200']} | {p50:.2f} | {p99:.2f} | {errors} | {statuses['429']} "
        f"| {rss[0]:.0f} / {rss[1]:.0f} / {rss[2]:.0f} | {100 * (rss[2] - rss[1]) / rss[1]:+.1f} % |"
    )


async def _browse(address: str, site: str, until: float, calls: Counter[str]) -> None:
    client = GatewayClient(address, session_wait_s=30)
    try:
        session = await client.open()
        try:
            while time.monotonic() < until:
                output = await session.call_tool(
                    "browser_navigate", json.dumps({"url": f"{site}/?q={random.random()}"})
                )
                calls["error" if output.is_error else "ok"] += 1
        finally:
            await session.close()
    finally:
        await client.close()


def browser(up: subprocess.Popen[bytes], offset: int, seconds: float, sessions: int = 8) -> set[int]:
    before = _descendants(up.pid)
    calls: Counter[str] = Counter()
    address = f"127.0.0.1:{PORTS['mcp-gateway'][0] + offset}"
    site = f"http://127.0.0.1:{TASK_SITE_PORT + offset}"

    async def run() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_browse(address, site, until, calls) for _ in range(sessions)))

    asyncio.run(run())
    during = _descendants(up.pid)
    print(f"\n## browser: {sessions} gateway sessions for {seconds:.0f} s, then closed")
    print("| tool calls ok | tool calls with an error | stack processes before | after closing (chromium stays up) |")
    print("|---|---|---|---|")
    print(f"| {calls['ok']} | {calls['error']} | {len(before)} | {len(during)} |")
    return during


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1000)
    parser.add_argument(
        "--load-seconds", "--load-s", dest="load_s", type=float, default=120.0, help="RSS growth is over the 2nd half"
    )
    parser.add_argument("--browser-s", type=float, default=60.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tw-faults-"))
    offset = random.randrange(1000, 9000)
    env = {
        **os.environ,
        **faults_training.TRAINING_ENV,
        "TRACEWHEEL_HOME": str(home),
        "TW_INFERENCE_MODEL": str(tiny_test_model()),
    }
    log = (home / "up.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "tracewheel.cli", "up", "--port-offset", str(offset)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    seen: set[int] = set()
    try:
        _wait(lambda: len(_stack(home)) == len(SERVICES) or up.poll() is not None, 300, "the stack")
        _wait(lambda: _healthy(offset, "dataset") and _healthy(offset, "inference"), 300, "dataset and inference")
        print(f"stack up (home {home}, port offset {offset}); log in {home / 'up.log'}")
        kills(home, offset, args.traces)
        load(home, offset, args.load_s)
        seen = browser(up, offset, args.browser_s)
    finally:
        seen |= _descendants(up.pid)
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(120)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()

    def alive() -> list[int]:
        return [pid for pid in seen if Path(f"/proc/{pid}").exists()]

    with contextlib.suppress(TimeoutError):
        _wait(lambda: not alive(), 10, "the stack's processes to exit")
    left = alive()
    print(f"\nafter `up` stopped: {len(left)} of the stack's {len(seen)} processes left {left[:10]}")


if __name__ == "__main__":
    main()
