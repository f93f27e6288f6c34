"""Schemathesis against both OpenAPI specs, in process, with a token set: the inference OpenAI API
and the dataset REST API/UI. Seeded and bounded (`derandomize`, `MAX_EXAMPLES` per operation): no
answer is a 5xx, and every 4xx carries an error body (JSON with `error`, or a page saying why)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.case import Case
from schemathesis.generation.modes import GenerationMode

from tracewheel.core.chat import SERVING_TEMPLATE
from tracewheel.core.http_security import HttpSecurity
from tracewheel.dataset.build import BuildConfig, DatasetBuilder
from tracewheel.dataset.config import DatasetSettings
from tracewheel.dataset.http_api import OPEN_PATHS, create_app
from tracewheel.dataset.signin import SIGN_IN_PATH
from tracewheel.dataset.store import TraceStore
from tracewheel.dataset.tokenizer import LazyTokenizer
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.openai_api import create_app as create_openai_app
from tracewheel.inference.runtime import build_state
from tracewheel.inference.testing import tiny_test_model

pytestmark = pytest.mark.slow

TOKEN = "fuzz-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = 50
MAX_TOKENS = 8  # generation length is not what is fuzzed; it bounds the run's time


def _fuzz(app: Any, bound: Callable[[Case], None] | None = None) -> tuple[list[str], Counter[int]]:
    """Runs every operation of `app`'s spec with valid and invalid data; returns the failures (method,
    path, status, body) and the statuses seen."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=MAX_EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Case) -> None:
                if bound is not None:
                    bound(case)
                response = case.call(headers=AUTH)
                statuses[response.status_code] += 1
                content_type = (response.headers.get("content-type") or [""])[0]
                problem = _problem(response.status_code, content_type, response.content)
                if problem:
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {problem}")

            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
                assert mode == GenerationMode.NEGATIVE
    return failures, statuses


def _problem(status: int, content_type: str, content: bytes) -> str:
    if status >= 500:
        return content[:300].decode(errors="replace")
    if status < 400:
        return ""
    if not content.strip():
        return "a 4xx without an error body"
    if content_type.startswith("application/json"):
        body = json.loads(content)
        if not isinstance(body, dict) or not body.get("error"):
            return f"a 4xx whose JSON names no error: {content[:200]!r}"
    return ""


def _bound_generation(case: Case) -> None:
    if isinstance(case.body, dict) and "max_tokens" in case.body:
        case.body["max_tokens"] = MAX_TOKENS
    if isinstance(case.body, dict) and "max_completion_tokens" in case.body:
        case.body["max_completion_tokens"] = MAX_TOKENS


def test_inference_openai_api_never_answers_5xx(tmp_path: Path) -> None:
    settings_ = InferenceSettings(
        model=str(tiny_test_model()),
        chat_template=SERVING_TEMPLATE,
        TRACEWHEEL_HOME=tmp_path,
        auth_token=TOKEN,
        default_max_tokens=MAX_TOKENS,
        http_allowed_hosts=["*"],
    )
    state = build_state(settings_)
    security = HttpSecurity.from_settings(settings_.auth_token, settings_, settings_.http_host, "TW_INFERENCE_")
    try:
        failures, statuses = _fuzz(create_openai_app(state, security), _bound_generation)
    finally:
        state.engine.stop()
    assert not failures, "\n".join(failures[:20])
    assert statuses[200] and sum(n for status, n in statuses.items() if 400 <= status < 500)


def test_dataset_api_never_answers_5xx(tmp_path: Path) -> None:
    settings_ = DatasetSettings(auth_token=TOKEN, TRACEWHEEL_HOME=tmp_path, http_allowed_hosts=["*"])
    security = HttpSecurity.from_settings(
        settings_.auth_token, settings_, "127.0.0.1", "TW_DATASET_", open_paths=OPEN_PATHS, sign_in_path=SIGN_IN_PATH
    )
    store = TraceStore(tmp_path / "traces.db")
    missing = tmp_path / "models" / "none"
    builder = DatasetBuilder(
        store, LazyTokenizer(str(missing)), BuildConfig(base_model=str(missing), chat_template="{{ x }}"), tmp_path
    )

    async def build(*, force: bool) -> Any:
        return await asyncio.to_thread(builder.build)

    try:
        failures, statuses = _fuzz(create_app(store, build, None, security))
    finally:
        store.close()
    assert not failures, "\n".join(failures[:20])
    assert statuses[200] and sum(n for status, n in statuses.items() if 400 <= status < 500)
