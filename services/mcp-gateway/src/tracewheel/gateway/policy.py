"""The gateway's URL policy: which URLs the browser may load.

By default the browser may reach public http(s) hosts and `about:blank`, nothing else:
- other schemes (`file:`, `chrome:`, `data:`, `javascript:`, `blob:`, `ftp:` …) are denied;
- so are addresses that are not globally routable: loopback, private ranges (RFC 1918,
  fc00::/7), link-local (169.254.0.0/16 with the cloud metadata service 169.254.169.254,
  fe80::/10), the AWS IPv6 metadata address fd00:ec2::254, CGNAT, multicast, unspecified and
  reserved ranges. IPv4 embedded in IPv6 (::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4) is judged
  by its IPv4 address.
- a host name is resolved and denied if ANY of its addresses is denied (a name that resolves
  to both a public and a loopback address is a classic DNS-rebinding setup).

An allow-list of host patterns overrides the address rules (not the scheme rule). A pattern is
`host`, `host:port`, `*.domain` (any subdomain), `host:*`, or an origin such as
`http://127.0.0.1:8400`; a pattern without a port matches every port. The task site
(127.0.0.1:8400 / localhost:8400) is on it by default. `deny_hosts` takes the same patterns and
denies matching hosts even when public.

`check_url` is pure apart from name resolution, which is injectable for tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Resolves (host, port) to the IP addresses it names; `socket.getaddrinfo` underneath.
Resolver = Callable[[str, int], Sequence[str]]
AsyncResolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_ALLOW_HOSTS = ("127.0.0.1:8400", "localhost:8400")
NETWORK_SCHEMES = frozenset({"http", "https", "ws", "wss"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_METADATA = {
    ipaddress.ip_address("169.254.169.254"): "the cloud metadata service",
    ipaddress.ip_address("fd00:ec2::254"): "the AWS IPv6 metadata service",
    ipaddress.ip_address("100.100.100.200"): "the Alibaba Cloud metadata service",
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


@dataclass(frozen=True)
class UrlPolicy:
    """What the browser may load.

    Attributes:
        allow_hosts: host patterns allowed whatever their address (see the module docstring).
            Default: the bundled task site on port 8400.
        deny_hosts: host patterns denied even when their address is public.
    """

    allow_hosts: tuple[str, ...] = DEFAULT_ALLOW_HOSTS
    deny_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The verdict on one URL. `reason` is a sentence fragment a model can read."""

    allowed: bool
    reason: str
    #: The resolved addresses that were judged; connect to these, not to a fresh lookup.
    addresses: tuple[str, ...] = ()
    #: False when the host name did not resolve (a broken URL rather than a forbidden one).
    resolved: bool = True


@dataclass(frozen=True)
class Target:
    """The network end of a URL."""

    scheme: str
    host: str
    port: int


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6), via `socket.getaddrinfo`.

    Raises:
        OSError: the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def async_system_resolver(host: str, port: int) -> list[str]:
    """`system_resolver` on the running loop's resolver thread pool.

    Raises:
        OSError: the name does not resolve.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_target(url: str) -> Target | Decision:
    """The scheme, host and port of `url`, or a denial when its scheme or form is not allowed."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        return Decision(False, f"malformed URL ({exc})")
    scheme = parts.scheme.lower()
    if scheme == "about" and parts.path == "blank":
        return Decision(True, "about:blank")
    if scheme not in NETWORK_SCHEMES:
        shown = f"'{scheme}:'" if scheme else "a missing scheme"
        return Decision(False, f"{shown} is not allowed (only http, https and about:blank)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return Decision(False, "the URL has no host")
    return Target(scheme, host, port or _DEFAULT_PORTS[scheme])


def _pattern_matches(pattern: str, host: str, port: int) -> bool:
    pattern = pattern.strip().lower()
    if "://" in pattern:
        pattern = pattern.split("://", 1)[1]
    pattern = pattern.rstrip("/")
    pattern_port: str | None = None
    if pattern.startswith("["):  # [v6]:port
        bracket_end = pattern.find("]")
        pattern_host, rest = pattern[1:bracket_end], pattern[bracket_end + 1 :]
        pattern_port = rest[1:] if rest.startswith(":") else None
    elif pattern.count(":") == 1:
        pattern_host, pattern_port = pattern.split(":")
    else:
        pattern_host = pattern
    if pattern_port not in (None, "*") and pattern_port != str(port):
        return False
    if pattern_host.startswith("*."):
        return host.endswith(pattern_host[1:])
    return host == pattern_host.rstrip(".")


def host_matches(patterns: Sequence[str], host: str, port: int) -> str | None:
    """The first pattern that matches `host:port`, or None."""
    host = host.lower().strip("[]").rstrip(".")
    return next((p for p in patterns if _pattern_matches(p, host, port)), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why the browser may not reach `address` ("a loopback address"…), or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (embedded as {embedded})" if problem else None
    if address in _METADATA:
        return f"a link-local address of {_METADATA[address]}"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared (CGNAT)", isinstance(address, ipaddress.IPv4Address) and address in _CGNAT),
        ("private", address.is_private),
        ("reserved", address.is_reserved or not address.is_global),
    )
    return next((f"a {kind} address" for kind, hit in checks if hit), None)


def judge_addresses(target: Target, addresses: Sequence[str], policy: UrlPolicy) -> Decision:
    """The verdict on `target` given the addresses its host resolved to (pure).

    A host on `policy.allow_hosts` is allowed whatever it resolves to; otherwise the host is
    denied if it is on `deny_hosts`, resolved to nothing, or ANY address is denied.
    """
    allowed_by = host_matches(policy.allow_hosts, target.host, target.port)
    if allowed_by is not None:
        return Decision(True, f"{target.host}:{target.port} is on the allow-list ({allowed_by})", tuple(addresses))
    denied_by = host_matches(policy.deny_hosts, target.host, target.port)
    if denied_by is not None:
        return Decision(False, f"{target.host} is on the deny-list ({denied_by})")
    if not addresses:
        return Decision(False, f"host {target.host!r} does not resolve", resolved=False)
    for text in addresses:
        problem = address_problem(ipaddress.ip_address(text.split("%", 1)[0]))
        if problem is None:
            continue
        if _is_ip_literal(target.host):
            return Decision(False, f"{text} is {problem}")
        return Decision(False, f"{target.host} resolves to {text}, {problem}")
    if _is_ip_literal(target.host):
        return Decision(True, f"{target.host} is a public address", tuple(addresses))
    return Decision(True, f"{target.host} resolves to public addresses only", tuple(addresses))


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _literal_addresses(host: str) -> list[str] | None:
    """The address of an IP-literal host without a lookup; None for a name."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        return None


def check_target(target: Target, policy: UrlPolicy, resolve: Resolver = system_resolver) -> Decision:
    """The verdict on a host and port (for CONNECT requests, which carry no URL)."""
    if host_matches(policy.allow_hosts, target.host, target.port) is not None:
        return judge_addresses(target, (), policy)
    addresses = _literal_addresses(target.host)
    if addresses is None:
        try:
            addresses = list(resolve(target.host, target.port))
        except (OSError, UnicodeError):
            addresses = []
    return judge_addresses(target, addresses, policy)


async def check_target_async(
    target: Target, policy: UrlPolicy, resolve: AsyncResolver = async_system_resolver
) -> Decision:
    """`check_target` resolving on the event loop (for the route handler and the proxy)."""
    if host_matches(policy.allow_hosts, target.host, target.port) is not None:
        return judge_addresses(target, (), policy)
    addresses = _literal_addresses(target.host)
    if addresses is None:
        try:
            addresses = list(await resolve(target.host, target.port))
        except (OSError, UnicodeError):
            addresses = []
    return judge_addresses(target, addresses, policy)


def check_url(url: str, policy: UrlPolicy, resolve: Resolver = system_resolver) -> Decision:
    """Whether the browser may load `url` under `policy`; resolves host names with `resolve`."""
    target = parse_target(url)
    if isinstance(target, Decision):
        return target
    return check_target(target, policy, resolve)


async def check_url_async(url: str, policy: UrlPolicy, resolve: AsyncResolver = async_system_resolver) -> Decision:
    """`check_url` without blocking the event loop."""
    target = parse_target(url)
    if isinstance(target, Decision):
        return target
    return await check_target_async(target, policy, resolve)


_HAS_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:(?!\d)")


def normalize_navigation_url(url: str) -> str:
    """Adds the scheme a model often leaves out, as @playwright/mcp does.

    `example.com/x` becomes `https://example.com/x`; `localhost:8400` and `127.0.0.1:8400`
    become `http://…`, since local servers rarely speak TLS.
    """
    url = url.strip()
    if _HAS_SCHEME.match(url):
        return url
    local = url.startswith(("localhost", "127.", "[::1]"))
    return ("http://" if local else "https://") + url
