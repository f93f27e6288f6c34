"""Shared fixtures: a store in a temporary directory and a builder of realistic agent traces."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tracewheel.dataset.store import TraceStore

GUIDANCE = "You are a careful browsing agent. Take a snapshot before you click."

TraceFactory = Callable[..., dict[str, Any]]


def _agent_run(trace_id: str, answer: str, url: str, created_at: str) -> dict[str, Any]:
    call_id = f"chatcmpl-tool-{trace_id}"
    return {
        "id": trace_id,
        "created_at": created_at,
        "model": "Qwen/Qwen3-4B",
        "tools": [{"type": "function", "function": {"name": "browser_navigate", "description": "Go to a URL"}}],
        "messages": [
            {"role": "system", "content": GUIDANCE},
            {"role": "user", "content": "What is the first product in the shop?"},
            {
                "role": "assistant",
                "content": "",
                "reasoning_content": "Open the shop first.",
                "tool_calls": [
                    {"id": call_id, "function": {"name": "browser_navigate", "arguments": json.dumps({"url": url})}}
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "name": "browser_navigate", "content": "- link 'Red kettle'"},
            {"role": "assistant", "content": answer, "reasoning_content": "It is listed first."},
        ],
        "task": {"suite": "shop", "task_id": "first-product", "prompt": "What is the first product in the shop?"},
        "outcome": {"verdict": "passed", "score": 1.0, "final_answer": answer},
        "metadata": {"guidance_prompt": GUIDANCE, "source": "agent"},
    }


@pytest.fixture
def make_trace() -> TraceFactory:
    """Builds the plain data of a one-query agent run; keyword arguments override its parts.

    `verdict`, `suite`, `task_id`, `final_answer` and metadata keys (`parse_errors`, ...) go
    where they belong; anything else replaces the top-level key.
    """

    def build(
        trace_id: str = "run-1",
        *,
        answer: str = "The Red kettle.",
        url: str = "http://127.0.0.1:8400",
        created_at: str = "2026-11-01T10:00:00Z",
        verdict: str = "passed",
        suite: str = "shop",
        task_id: str = "first-product",
        metadata: dict[str, Any] | None = None,
        **top_level: Any,
    ) -> dict[str, Any]:
        data = _agent_run(trace_id, answer, url, created_at)
        data["outcome"]["verdict"] = verdict
        data["task"].update(suite=suite, task_id=task_id)
        data["metadata"].update(metadata or {})
        data.update(top_level)
        return data

    return build


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TraceStore]:
    with TraceStore(tmp_path / "traces.db") as opened:
        yield opened


@pytest.fixture
def fixtures_dir() -> Path:
    return Path(__file__).parent / "fixtures"
