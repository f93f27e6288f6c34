"""The bundled shop as a suite: its generated train and held-out tasks behind the `Suite` interface."""

from __future__ import annotations

from collections.abc import Mapping

from tracewheel.agent.suites.suite import SHOP, Suite
from tracewheel.agent.tasks.suites import DEFAULT_BASE_URL, load_suite

DESCRIPTION = "The bundled shop (the task site): price lookups, search, related items, orders, comparisons."


def shop_suite(
    seed: int = 0, n_items: int = 300, sizes: Mapping[str, int] | None = None, base_url: str = DEFAULT_BASE_URL
) -> Suite:
    """Both splits of the shop for the site `create_app(seed, n_items)` served at `base_url`.

    Raises:
        InvalidArgument, FailedPrecondition: see `tracewheel.agent.tasks.load_suite`.
    """
    sizes = sizes or {}
    tasks = [
        task
        for split in ("train", "heldout")
        for task in load_suite(split, seed, size=sizes.get(split), n_items=n_items, base_url=base_url)
    ]
    return Suite(SHOP, tuple(tasks), DESCRIPTION, "bundled", f"{base_url.rstrip('/')}/api/reset")
