"""The demo's long gRPC calls stop on Ctrl-C (SIGINT) instead of waiting for the answer."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent import futures

import grpc
import pytest

from tracewheel.cli.flywheel import interruptible_call


@pytest.fixture
def slow_server():  # type: ignore[no-untyped-def]
    """A real gRPC server whose one method answers after 10 s (or when the client cancels)."""
    cancelled = threading.Event()

    def slow(request: bytes, context: grpc.ServicerContext) -> bytes:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not context.is_active():
                cancelled.set()
                return b""
            time.sleep(0.05)
        return request

    handler = grpc.method_handlers_generic_handler("t.Slow", {"Call": grpc.unary_unary_rpc_method_handler(slow)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel.unary_unary("/t.Slow/Call"), cancelled
    server.stop(None)


@pytest.fixture
def sigint_raises():  # type: ignore[no-untyped-def]
    """Python's own SIGINT handler for the test: a shell that starts the suite in the background
    without job control (`cmd &` in a script) makes it ignore SIGINT, and Python keeps that."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_sigint_stops_a_long_call_and_cancels_it(slow_server, sigint_raises) -> None:  # type: ignore[no-untyped-def]
    method, cancelled = slow_server
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        interruptible_call(method, b"x", timeout_s=30)
    assert time.monotonic() - started < 3  # not the handler's 10 s
    assert cancelled.wait(5)  # the server saw the call end


def test_a_deadline_is_the_calls_own_error(slow_server) -> None:  # type: ignore[no-untyped-def]
    method, _ = slow_server
    with pytest.raises(grpc.RpcError) as raised:
        interruptible_call(method, b"x", timeout_s=0.5)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
