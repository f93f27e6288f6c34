"""Real service objects on real gRPC servers for the CLI tests, and the CLI run in this process.

The servicers are the services' own (the dataset's over a SQLite store and a real builder on the
tiny model's tokenizer, the trainer's over a real job queue, the agent's over a real runner with
a scripted model and instant tools, as the services' own tests use); they run on grpc.aio
servers in an event loop on a background thread, so `tracewheel.cli.__main__.main` can call
them synchronously from the test.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tracewheel.cli.__main__ import main
from tracewheel.core.grpc_server import GrpcServer


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Ran:
    """`tracewheel ARGV` in this process: its exit code, stdout and stderr."""
    previous = signal.getsignal(signal.SIGTERM)  # main() makes SIGTERM raise KeyboardInterrupt
    capsys.readouterr()
    try:
        with pytest.raises(SystemExit) as exited:
            main(list(argv))
    finally:
        signal.signal(signal.SIGTERM, previous)
    captured = capsys.readouterr()
    return Ran(int(exited.value.code or 0), captured.out, captured.err)


class BackgroundLoop:
    """An asyncio event loop on its own thread; `run` waits for a coroutine's result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="services", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout_s: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def serve(service: str, register: Callable[[Any], None], token: str | None = None) -> tuple[GrpcServer, str]:
    """A GrpcServer (the services' own: error mapping, optional token) with one servicer; its address."""
    server = GrpcServer([f"tracewheel.v1.{service}"], auth_token=token)
    register(server.server)
    port = server.bind("127.0.0.1", 0)
    await server.start()
    return server, f"127.0.0.1:{port}"


TRELIS_DIR = Path(__file__).parents[1] / "services" / "dataset" / "tests" / "fixtures" / "trelis"


def store_and_builder(home: Path) -> tuple[Any, Any]:
    """A trace store in `home` and the dataset builder on the tiny model's tokenizer and template."""
    from tracewheel.core.chat import TRAINING_TEMPLATE
    from tracewheel.dataset.build import BuildConfig, DatasetBuilder, load_chat_template
    from tracewheel.dataset.store import TraceStore
    from tracewheel.dataset.tokenizer import LazyTokenizer
    from tracewheel.inference.testing import tiny_test_model

    base_model = str(tiny_test_model())
    home.mkdir(parents=True, exist_ok=True)
    store = TraceStore(home / "traces.db")
    config = BuildConfig(
        base_model=base_model, chat_template=load_chat_template(TRAINING_TEMPLATE, base_model), eval_ratio=0.0
    )
    return store, DatasetBuilder(store, LazyTokenizer(base_model), config, home / "datasets")


def dataset_service(home: Path) -> tuple[Any, Any]:
    """The dataset servicer over a store in `home` and a builder on the tiny model; and the store."""
    from tracewheel.dataset.server import DatasetServicer

    store, builder = store_and_builder(home)

    async def ingest(trace: Any) -> Any:
        return store.ingest(trace)

    async def build(*, force: bool) -> Any:
        return await asyncio.to_thread(builder.build)

    return DatasetServicer(store, ingest, build), store


def built_dataset(home: Path) -> Path:
    """A dataset built from the Trelis fixture traces, all approved: its directory."""
    from tracewheel.dataset.curation import CurationStatus
    from tracewheel.dataset.importers import import_traces, read_any

    store, builder = store_and_builder(home)
    with store:
        import_traces(store, read_any(TRELIS_DIR))
        for stored in store.list_traces(None, 50).traces:
            store.set_status(stored.trace.id, CurationStatus.APPROVED)
        return Path(builder.build().record.path)
