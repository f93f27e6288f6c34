"""The agent's trace output against a real nats-server: a trace over the size limit is not sent but
kept in <home>/rejected/, and the traces after it are published as usual."""

from __future__ import annotations

import json
from pathlib import Path

from tracewheel.agent.events import TraceOutput
from tracewheel.core.events import SUBJECT_TRACE_COMPLETED, connect, ensure_streams
from tracewheel.core.natsserver import NatsServer
from tracewheel.core.trace import Message, Trace
from tracewheel.core.trace_size import REJECTED_DIR


def trace_of(trace_id: str, size: int) -> Trace:
    return Trace(id=trace_id, model="agent", messages=[Message(role="user", content="x" * size)])


async def test_an_oversized_trace_is_kept_and_the_next_one_is_published(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    client, js = await connect(nats_server.url, "agent-test")
    try:
        await ensure_streams(js)
        output = TraceOutput(js, tmp_path / "traces", max_trace_bytes=10_000, rejected_home=tmp_path)
        await output(trace_of("too-big", 50_000))  # returns: the suite goes on
        await output(trace_of("fits", 100))
        info = await js.stream_info("TRACES", subjects_filter=SUBJECT_TRACE_COMPLETED)
        last = await js.get_last_msg("TRACES", SUBJECT_TRACE_COMPLETED)
    finally:
        await client.close()
    assert info.state.messages == 1 and last.headers["Nats-Msg-Id"] == "fits"
    (kept,) = (tmp_path / REJECTED_DIR).glob("*too-big*.json")
    assert json.loads(kept.read_text())["id"] == "too-big"
    reason = kept.with_name(kept.name.removesuffix(".json") + ".reason.txt").read_text()
    assert "over the limit of 10000 bytes" in reason
    assert not (tmp_path / "traces" / "too-big.json").exists()
