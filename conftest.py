"""Fixtures every test folder may use: a real nats-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tracewheel.core.natsserver import NatsServer


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server with JetStream, its data in the test's temp dir."""
    server = NatsServer(tmp_path / "jetstream", log_file=tmp_path / "nats.log").start()
    yield server
    server.stop()
