"""Fixtures of the CLI tests (tests/test_cli_*.py)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cli_services import BackgroundLoop


@pytest.fixture
def background() -> Iterator[BackgroundLoop]:
    """An event loop on a thread for the services' servers."""
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TRACEWHEEL_HOME with no stack, and no token in the environment."""
    monkeypatch.setenv("TRACEWHEEL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRACEWHEEL_TOKEN", raising=False)
    return tmp_path / "home"


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Python's own SIGINT handler for the test: a shell that starts the suite in the background
    without job control makes it ignore SIGINT, and Python keeps that."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
