"""Scale: the trace store at 100,000 traces on SQLite and PostgreSQL, a 10,000-trace build, fan-out to 2 replicas.

Run: `.venv/bin/python bench/scale.py [--traces 100000] [--build-traces 10000] [--stores sqlite,postgresql]
[--no-fanout]`. For each store: ingest the generated traces one by one, as the ingest consumer
does (traces/s); then list and filter latency at that size (p50/p99 ms over `--repeats` calls
each) of what the curation list page calls: a page of 50 (`list_summaries`) first, by status,
suite and tag, pages 1 to 20 in turn, the counts per status without and with a filter; and a
page of 50 whole traces (`list_traces`, the REST and gRPC lists). Then a build of the approved
traces among `--build-traces` generated ones on SQLite (traces/s, the tiny test model's SmolLM2
tokenizer), and the time from a models.v1.trained event to two inference replicas serving the
adapter (the tiny model, NATS). PostgreSQL is a throwaway local cluster (`pgserver.py`, fsync
off) unless TW_TEST_POSTGRES_URL names a server. Peak RSS is this process's (not the
PostgreSQL server's or the replicas').

Goals (issue #35): list p99 <= 50 ms at 100k traces; builds >= 500 traces/s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # bench/dataset.py: the generated agent traces

from dataset import generated_trace

from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.records import TraceQuery
from tracewheel.dataset.store import TraceStore

SUITES = 5


def varied_trace(n: int) -> dict[str, Any]:
    """bench/dataset.py's trace, spread over time, suites and verdicts, as a real store holds them."""
    trace = generated_trace(n)
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)  # newest last, one a second
    trace["id"] = f"scale-{n:07d}"
    trace["created_at"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    trace["task"]["suite"] = f"suite-{n % SUITES}"
    trace["outcome"]["verdict"] = "passed" if n % 3 else "failed"
    return trace


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """p50 and p99 of `call` in milliseconds."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def ingest(store: TraceStore, count: int) -> float:
    start = time.perf_counter()
    for n in range(count):
        store.ingest(varied_trace(n))
    return count / (time.perf_counter() - start)


def twentieth_page(store: TraceStore) -> None:
    token = ""
    for _ in range(20):
        token = store.list_summaries(page_size=50, page_token=token).next_page_token


def list_latencies(store: TraceStore, repeats: int) -> dict[str, tuple[float, float]]:
    """The list page's calls (`list_summaries`, `count_by_status`), then a page of whole traces (REST, gRPC)."""
    tag = (store.list_summaries(page_size=1).traces[0].tags or ("verified",))[0]
    suite = TraceQuery(suite="suite-3")
    queries: dict[str, Callable[[], object]] = {
        "first page (50)": lambda: store.list_summaries(page_size=50),
        "status=approved": lambda: store.list_summaries(TraceQuery(status=CurationStatus.APPROVED), 50),
        "suite=suite-3": lambda: store.list_summaries(suite, 50),
        f"tag={tag}": lambda: store.list_summaries(TraceQuery(tag=tag), 50),
        "pages 1-20 (20 calls)": lambda: twentieth_page(store),
        "count by status": store.count_by_status,
        "count, suite=suite-3": lambda: store.count_by_status(suite),
        "whole traces (50)": lambda: store.list_traces(page_size=50),
    }
    return {name: timed(query, repeats) for name, query in queries.items()}


def postgres_url(stack: list[Callable[[], None]]) -> str:
    from tracewheel.dataset.pgserver import PostgresServer, create_database

    server_url = os.environ.get("TW_TEST_POSTGRES_URL")
    if not server_url:
        server = PostgresServer().start()
        stack.append(server.stop)
        server_url = server.url()
    return create_database(server_url)


def bench_stores(names: list[str], count: int, repeats: int, tmp: Path) -> None:
    cleanup: list[Callable[[], None]] = []
    try:
        for name in names:
            location = str(tmp / "traces.sqlite") if name == "sqlite" else postgres_url(cleanup)
            with TraceStore(location) as store:
                rate = ingest(store, count)
                print(f"\n{name}: ingest of {count} traces: {rate:.0f} traces/s ({count / rate:.0f} s)")
                print(f"  {'query':<22}{'p50 ms':>9}{'p99 ms':>9}")
                for query, (p50, p99) in list_latencies(store, repeats).items():
                    print(f"  {query:<22}{p50:>9.2f}{p99:>9.2f}")
    finally:
        for stop in reversed(cleanup):
            stop()


def bench_build(count: int, tmp: Path) -> None:
    from transformers import AutoTokenizer

    from tracewheel.core.chat import TRAINING_TEMPLATE, load_template
    from tracewheel.dataset.build import BuildConfig, DatasetBuilder
    from tracewheel.inference.testing import TEST_CACHE, smollm2_tokenizer_dir

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir(TEST_CACHE))
    template = load_template(TRAINING_TEMPLATE)
    with TraceStore(tmp / "build.sqlite") as store:
        for n in range(count):
            store.ingest(varied_trace(n))
        approved = store.approved_revisions()
        config = BuildConfig(base_model="tiny-qwen3", chat_template=template, eval_ratio=0.1)
        start = time.perf_counter()
        DatasetBuilder(store, tokenizer, config, tmp / "datasets").build()
        seconds = time.perf_counter() - start
    print(f"\nbuild of {len(approved)} approved traces: {seconds:.1f} s, {len(approved) / seconds:.0f} traces/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--build-traces", type=int, default=10_000)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--no-fanout", action="store_true", help="skip the two inference replicas")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        bench_stores([s for s in args.stores.split(",") if s], args.traces, args.repeats, tmp)
        if args.build_traces:
            bench_build(args.build_traces, tmp)
        if not args.no_fanout:
            from scale_fanout import fanout_seconds

            print(f"\nadapter fan-out to 2 replicas: {fanout_seconds(tmp):.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
