"""Server-sent events that tell open console pages to refresh their live sections.

One stream (`/console/events`) serves every page: it fingerprints what the pages show (builds,
jobs and their progress, deployments) every couple of seconds and sends an event `changed` when
the fingerprint moves; `console.js` then re-fetches each `data-live` section of the page. The
first fingerprint is sent too, so a change between rendering the page and connecting is not
missed. The stream ends when the client goes (sse-starlette notices the disconnect) and when the
service stops (`stopping` is set before the HTTP server is asked to exit: uvicorn waits for open
responses, and an endless one would hold its shutdown).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from sse_starlette import EventSourceResponse, ServerSentEvent

CHANGED = "changed"
INTERVAL_S = 2.0
KEEPALIVE_S = 15.0  # a comment line, so proxies keep an idle stream open
_TICK_S = 0.2  # how soon a stopping service ends the stream


class SharedLook:
    """One fingerprint per interval, however many streams ask: open tabs do not multiply the
    reads of the store and the peers."""

    def __init__(self, fingerprint: Callable[[], Awaitable[str]], interval_s: float = INTERVAL_S) -> None:
        self._fingerprint = fingerprint
        self._max_age_s = interval_s / 2
        self._value = ""
        self._taken_at = -math.inf
        self._lock = asyncio.Lock()

    async def __call__(self) -> str:
        async with self._lock:
            if time.monotonic() - self._taken_at >= self._max_age_s:
                self._value = await self._fingerprint()
                self._taken_at = time.monotonic()
            return self._value


async def _wait(stopping: threading.Event, seconds: float) -> bool:
    """Waits `seconds`; returns False (at once) when the service is stopping."""
    deadline = time.monotonic() + seconds
    while not stopping.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        await asyncio.sleep(min(_TICK_S, left))
    return False


async def changes(
    fingerprint: Callable[[], Awaitable[str]], stopping: threading.Event, interval_s: float = INTERVAL_S
) -> AsyncIterator[ServerSentEvent]:
    """An event `changed` now and whenever `fingerprint()` gives a new value, until `stopping` is set."""
    last = ""
    while not stopping.is_set():
        current = await fingerprint()
        if current != last:
            last = current
            yield ServerSentEvent(data=current[:16], event=CHANGED)
        if not await _wait(stopping, interval_s):
            return


def change_events(
    fingerprint: Callable[[], Awaitable[str]], stopping: threading.Event, interval_s: float = INTERVAL_S
) -> EventSourceResponse:
    """The event stream response of `changes`, with a keepalive comment every KEEPALIVE_S."""
    return EventSourceResponse(changes(fingerprint, stopping, interval_s), ping=KEEPALIVE_S)
