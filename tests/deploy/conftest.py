"""Fixtures of the deployment checks: the rendered Kubernetes overlays and the compose file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# the test modules import their helpers by name (the suite runs in importlib mode)
sys.path.insert(0, str(Path(__file__).parent))

from deploy_helpers import OVERLAYS, ROOT, render_overlay


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay's objects, rendered offline with `kubectl kustomize`."""
    return {overlay: render_overlay(overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())
