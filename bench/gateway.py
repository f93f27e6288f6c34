"""Gateway overhead: what gRPC CallTool costs over calling Playwright directly.

    .venv/bin/python bench/gateway.py [--calls 200 --sessions 8]

On a small local page (a heading, a paragraph, 10 links):
1. latency of browser_snapshot, p50/p99 over N calls, three ways: Playwright's own
   `page.aria_snapshot(mode="ai")` (the floor), the gateway's BrowserSession.call_tool in
   process (tool layer: validation, page report, rendering), and gRPC CallTool over loopback
   (transport + JSON + protobuf on top);
2. throughput of gRPC CallTool with 1 and with `--sessions` concurrent sessions (calls/s);
3. memory per session: RSS (and USS, without shared pages) of the chromium process tree
   after each added session, each navigated to the page.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import psutil

from tracewheel.core.grpc_server import GrpcServer
from tracewheel.gateway.browser_options import BrowserConfig
from tracewheel.gateway.router import Gateway
from tracewheel.gateway.server import SERVICE_NAME, GatewayServicer
from tracewheel.gateway.session import SessionManager
from tracewheel.v1 import gateway_pb2, gateway_pb2_grpc

PAGE = (
    "<!doctype html><html><head><title>Bench</title></head><body><h1>Bench page</h1><p>Small page.</p><ul>"
    + "".join(f'<li><a href="/item/{i}">Item {i}</a></li>' for i in range(10))
    + "</ul></body></html>"
).encode()


class _Page(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)


async def _timed(n: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(10):  # warm-up
        await call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return times


def _p(times: list[float], q: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[int(q) - 1] * 1000


def _chromium_memory() -> tuple[float, float]:
    rss = uss = 0
    for process in psutil.Process().children(recursive=True):
        try:
            if "chrom" in process.name():
                info = process.memory_full_info()
                rss, uss = rss + info.rss, uss + info.uss
        except psutil.NoSuchProcess:
            continue
    return rss / 2**20, uss / 2**20


async def _throughput(stub: gateway_pb2_grpc.GatewayStub, session_ids: list[str], calls_each: int) -> float:
    async def worker(session_id: str) -> None:
        request = gateway_pb2.CallToolRequest(session_id=session_id, name="browser_snapshot", arguments_json="{}")
        for _ in range(calls_each):
            await stub.CallTool(request)

    started = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in session_ids))
    return len(session_ids) * calls_each / (time.perf_counter() - started)


async def main(calls: int, sessions: int) -> None:
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_address[1]}/"
    config = BrowserConfig(
        allow_hosts=(f"127.0.0.1:{http.server_address[1]}",),
        attachments_dir=Path(tempfile.mkdtemp()),
        max_sessions=sessions + 4,
        reap_interval_s=0,
    )
    async with SessionManager(config) as manager:
        gateway = Gateway(manager)
        server = GrpcServer([SERVICE_NAME])
        gateway_pb2_grpc.add_GatewayServicer_to_server(GatewayServicer(gateway), server.server)
        port = server.bind("127.0.0.1", 0)
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            rows = await _latencies(stub, gateway, manager, url, calls)
            one = await _open_navigated(stub, url, 1)
            single = await _throughput(stub, one, calls)
            base_rss, base_uss = _chromium_memory()
            many, memory = [], []
            for _ in range(sessions):
                many += await _open_navigated(stub, url, 1)
                memory.append(_chromium_memory())
            concurrent = await _throughput(stub, many, max(calls // sessions, 20))
        await server.stop(0.5)
        await gateway.close_all()
    http.shutdown()
    _report(rows, calls, single, concurrent, sessions, (base_rss, base_uss), memory)


async def _open_navigated(stub: gateway_pb2_grpc.GatewayStub, url: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        session_id = (await stub.OpenSession(gateway_pb2.OpenSessionRequest())).session_id
        arguments = json.dumps({"url": url})
        await stub.CallTool(
            gateway_pb2.CallToolRequest(session_id=session_id, name="browser_navigate", arguments_json=arguments)
        )
        ids.append(session_id)
    return ids


async def _latencies(
    stub: gateway_pb2_grpc.GatewayStub, gateway: Gateway, manager: SessionManager, url: str, calls: int
) -> list[tuple[str, list[float]]]:
    assert manager.browser is not None
    context = await manager.browser.new_context()
    page = await context.new_page()
    await page.goto(url)
    direct = await _timed(calls, lambda: page.aria_snapshot(mode="ai"))
    await context.close()
    (session_id,) = await _open_navigated(stub, url, 1)
    session = gateway.get(session_id).browser
    in_process = await _timed(calls, lambda: session.call_tool("browser_snapshot", {}))
    request = gateway_pb2.CallToolRequest(session_id=session_id, name="browser_snapshot", arguments_json="{}")
    over_grpc = await _timed(calls, lambda: stub.CallTool(request))
    await gateway.close(session_id)
    return [
        ("Playwright aria_snapshot (direct)", direct),
        ("BrowserSession.call_tool (in process)", in_process),
        ("gRPC CallTool", over_grpc),
    ]


def _report(
    rows: list[tuple[str, list[float]]],
    calls: int,
    single: float,
    concurrent: float,
    sessions: int,
    base: tuple[float, float],
    memory: list[tuple[float, float]],
) -> None:
    direct_p50, direct_p99 = _p(rows[0][1], 50), _p(rows[0][1], 99)
    print(f"browser_snapshot latency, N={calls} (ms)")
    print(f"{'path':40} {'p50':>8} {'p99':>8} {'p50 x':>7} {'p99 x':>7}")
    for name, times in rows:
        p50, p99 = _p(times, 50), _p(times, 99)
        print(f"{name:40} {p50:8.2f} {p99:8.2f} {p50 / direct_p50:7.2f} {p99 / direct_p99:7.2f}")
    grpc_p50 = _p(rows[2][1], 50) - _p(rows[1][1], 50)
    print(f"gRPC transport alone (p50 gRPC - p50 in process): {grpc_p50:.2f} ms")
    print()
    print(
        f"throughput (gRPC browser_snapshot): 1 session {single:.0f} calls/s; {sessions} sessions {concurrent:.0f} "
        f"calls/s ({concurrent / single:.2f}x)"
    )
    print()
    print(f"chromium tree with no bench sessions: RSS {base[0]:.0f} MiB, USS {base[1]:.0f} MiB")
    print(f"{'sessions':>8} {'RSS MiB':>9} {'USS MiB':>9}")
    for n, (rss, uss) in enumerate(memory, 1):
        print(f"{n:8d} {rss:9.0f} {uss:9.0f}")
    rss_each = (memory[-1][0] - base[0]) / len(memory)
    uss_each = (memory[-1][1] - base[1]) / len(memory)
    print(f"per added session: RSS +{rss_each:.1f} MiB, USS +{uss_each:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per latency measurement")
    parser.add_argument("--sessions", type=int, default=8, help="concurrent sessions for throughput and memory")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.sessions))
