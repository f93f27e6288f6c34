"""The URL policy at the network layer of one browser context.

Two fences, because neither is enough alone:
- `context.route("**/*")` judges every request the page starts (documents, subresources,
  iframes, new tabs) and aborts a denied one with `blockedbyclient` — with the full URL and
  whether it was a navigation, which the tools need to answer clearly;
- the context's traffic goes through an EgressProxy (see egress.py), which also sees redirect
  hops (the route handler does not), WebSockets, and pins the resolved addresses.
Both report into one log of BlockedRequest that the tools read after each action.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, ProxySettings, Request, Response, Route
from playwright.async_api import Error as PlaywrightError

from tracewheel.gateway.egress import BLOCKED_HEADER, EgressBlock, EgressProxy
from tracewheel.gateway.policy import AsyncResolver, UrlPolicy, async_system_resolver, check_url_async

logger = logging.getLogger(__name__)

_TUNNEL_FAILED = "net::ERR_TUNNEL_CONNECTION_FAILED"


@dataclass(frozen=True)
class BlockedRequest:
    """A request the policy stopped."""

    url: str
    reason: str
    #: A tab's top-level document (a navigation the model should hear about as an error).
    navigation: bool
    #: The URL the page asked for when the block hit a redirect hop, else None.
    redirected_from: str | None = None


def is_top_level_navigation(request: Request) -> bool:
    """Whether `request` loads a tab's document (not an iframe's, not a subresource)."""
    if not request.is_navigation_request():
        return False
    try:
        return request.frame.parent_frame is None
    except PlaywrightError:  # issued before its frame exists: the first document of a new tab
        return True


def _chain_start(request: Request) -> str | None:
    first = request.redirected_from
    if first is None:
        return None
    while first.redirected_from is not None:
        first = first.redirected_from
    return first.url


class NetworkGuard:
    """Applies a UrlPolicy to one browser context and logs what it blocks.

    Args:
        policy: what the context may load.
        resolve: host name resolver (injectable for tests).
    """

    def __init__(self, policy: UrlPolicy, resolve: AsyncResolver = async_system_resolver) -> None:
        self.policy = policy
        self._resolve = resolve
        self._log: list[BlockedRequest] = []
        self._egress_reasons: dict[tuple[str, int], str] = {}
        self._proxy = EgressProxy(policy, on_blocked=self._on_egress_block, resolve=resolve)

    async def start(self) -> None:
        """Starts the egress proxy; call before `proxy_settings`."""
        await self._proxy.start()

    def proxy_settings(self) -> ProxySettings:
        """The `proxy=` argument for `Browser.new_context` (loopback included).

        Raises:
            RuntimeError: `start` was not called.
        """
        return {"server": self._proxy.url, "bypass": "<-loopback>"}

    async def attach(self, context: BrowserContext) -> None:
        """Installs the route handler and the listeners that attribute proxy blocks."""
        await context.route("**/*", self._route)
        context.on("response", self._on_response)
        context.on("requestfailed", self._on_request_failed)

    async def close(self) -> None:
        """Stops the egress proxy."""
        await self._proxy.close()

    def mark(self) -> int:
        """A position in the log; `blocked_since(mark)` returns what came after it."""
        return len(self._log)

    def blocked_since(self, mark: int) -> list[BlockedRequest]:
        """Requests blocked after `mark`, oldest first."""
        return self._log[mark:]

    async def _route(self, route: Route, request: Request) -> None:
        decision = await check_url_async(request.url, self.policy, self._resolve)
        # The page may close while the host resolves; then there is nothing left to answer.
        with contextlib.suppress(PlaywrightError):
            if decision.allowed:
                await route.continue_()
                return
            logger.info("blocked %s request to %s: %s", request.resource_type, request.url, decision.reason)
            self._log.append(BlockedRequest(request.url, decision.reason, is_top_level_navigation(request)))
            await route.abort("blockedbyclient")

    def _on_egress_block(self, block: EgressBlock) -> None:
        self._egress_reasons[(block.host, block.port)] = block.reason

    def _on_response(self, response: Response) -> None:
        reason = response.headers.get(BLOCKED_HEADER.lower())
        if reason is None:
            return
        request = response.request
        blocked = BlockedRequest(request.url, reason, is_top_level_navigation(request), _chain_start(request))
        self._log.append(blocked)

    def _on_request_failed(self, request: Request) -> None:
        if request.failure != _TUNNEL_FAILED:
            return
        host_port = _host_port(request.url)
        reason = self._egress_reasons.get(host_port) if host_port else None
        if reason is None:
            return
        blocked = BlockedRequest(request.url, reason, is_top_level_navigation(request), _chain_start(request))
        self._log.append(blocked)


def _host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    except ValueError:
        return None
    return ((parts.hostname or "").rstrip("."), port)
