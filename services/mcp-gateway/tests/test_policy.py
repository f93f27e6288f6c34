"""The URL policy as a pure function: schemes, address ranges, IPv6, DNS names, allow-list."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tracewheel.gateway.policy import (
    Target,
    UrlPolicy,
    check_target,
    check_url,
    check_url_async,
    normalize_navigation_url,
)

DEFAULT = UrlPolicy()
FAKE_DNS = {
    "public.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "rebind.test": ["93.184.216.34", "127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "internal.test": ["10.1.2.3"],
    "v6-loopback.test": ["::1"],
}


def fake_resolver(host: str, port: int) -> Sequence[str]:
    if host not in FAKE_DNS:
        raise OSError(f"{host} does not resolve")
    return FAKE_DNS[host]


def check(url: str, policy: UrlPolicy = DEFAULT) -> tuple[bool, str]:
    decision = check_url(url, policy, fake_resolver)
    return decision.allowed, decision.reason


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "chrome://settings",
        "data:text/html,hi",
        "javascript:alert(1)",
        "blob:http://x/1",
        "ftp://public.test/",
        "about:config",
        "view-source:http://public.test/",
        "//public.test/",
        "public.test",
    ],
)
def test_other_schemes_are_denied(url: str) -> None:
    allowed, reason = check(url)

    assert not allowed
    assert "is not allowed (only http, https and about:blank)" in reason


def test_about_blank_is_allowed() -> None:
    assert check("about:blank")[0]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fd00:ec2::254]/", "AWS IPv6 metadata"),
        ("http://127.0.0.1/", "loopback"),
        ("http://127.8.9.10:8400/", "loopback"),
        ("http://[::1]:8400/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fc00::1]/", "private"),
        ("http://[fe80::1]/", "link-local"),
        ("http://100.64.0.1/", "shared (CGNAT)"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
        ("http://[2002:7f00:1::]/", "loopback"),
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one decimal number
        ("http://0x7f.1/", "loopback"),
    ],
)
def test_non_public_addresses_are_denied(url: str, kind: str) -> None:
    decision = check_url(url, DEFAULT)  # IP literals and numeric hosts need no DNS

    assert not decision.allowed
    assert kind in decision.reason


@pytest.mark.parametrize("url", ["http://93.184.216.34/", "https://[2606:4700::1111]/x", "http://public.test:8080/"])
def test_public_addresses_are_allowed(url: str) -> None:
    assert check(url)[0]


def test_name_is_denied_if_any_address_is_denied() -> None:
    allowed, reason = check("http://rebind.test/")

    assert not allowed
    assert reason == "rebind.test resolves to 127.0.0.1, a loopback address"


@pytest.mark.parametrize("host", ["metadata.test", "internal.test", "v6-loopback.test"])
def test_names_resolving_to_denied_ranges_are_denied(host: str) -> None:
    assert not check(f"http://{host}/")[0]


def test_localhost_resolves_to_loopback_with_the_system_resolver() -> None:
    decision = check_url("http://localhost:9999/", DEFAULT)

    assert not decision.allowed
    assert "localhost resolves to" in decision.reason
    assert "loopback" in decision.reason


def test_unresolvable_name_is_denied_and_marked() -> None:
    decision = check_url("http://nowhere.test/", DEFAULT, fake_resolver)

    assert not decision.allowed
    assert not decision.resolved


def test_task_site_is_allow_listed_by_default() -> None:
    assert check_url("http://127.0.0.1:8400/tasks", DEFAULT).allowed
    assert check_url("http://localhost:8400/", DEFAULT).allowed
    assert not check_url("http://127.0.0.1:8401/", DEFAULT).allowed


@pytest.mark.parametrize(
    ("pattern", "url", "allowed"),
    [
        ("internal.test", "http://internal.test:1234/", True),
        ("internal.test:80", "http://internal.test/", True),
        ("internal.test:81", "http://internal.test/", False),
        ("internal.test:*", "https://internal.test/", True),
        ("*.corp.test", "http://api.corp.test/", True),
        ("*.corp.test", "http://corp.test/", False),
        ("http://10.1.2.3:8080", "http://10.1.2.3:8080/x", True),
        ("[::1]:9000", "http://[::1]:9000/", True),
        ("INTERNAL.TEST", "http://internal.test./", True),
    ],
)
def test_allow_list_patterns(pattern: str, url: str, allowed: bool) -> None:
    policy = UrlPolicy(allow_hosts=(pattern,))

    assert check(url, policy)[0] is allowed


def test_allow_list_does_not_allow_other_schemes() -> None:
    assert not check("file://internal.test/x", UrlPolicy(allow_hosts=("internal.test",)))[0]


def test_deny_list_blocks_public_hosts() -> None:
    allowed, reason = check("https://public.test/", UrlPolicy(deny_hosts=("public.test",)))

    assert not allowed
    assert "deny-list" in reason


def test_check_target_judges_connect_requests() -> None:
    assert not check_target(Target("https", "rebind.test", 443), DEFAULT, fake_resolver).allowed
    assert check_target(Target("https", "public.test", 443), DEFAULT, fake_resolver).addresses == tuple(
        FAKE_DNS["public.test"]
    )


@pytest.mark.asyncio
async def test_async_check_matches_sync() -> None:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return fake_resolver(host, port)

    for url in ("http://rebind.test/", "http://public.test/", "file:///x", "http://127.0.0.1:8400/"):
        assert (await check_url_async(url, DEFAULT, resolve)).allowed is check(url)[0]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("example.com/a", "https://example.com/a"),
        ("localhost:8400/x", "http://localhost:8400/x"),
        ("127.0.0.1:8400", "http://127.0.0.1:8400"),
        ("http://example.com", "http://example.com"),
        ("about:blank", "about:blank"),
        ("file:///etc/passwd", "file:///etc/passwd"),
    ],
)
def test_navigation_urls_get_a_scheme(given: str, expected: str) -> None:
    assert normalize_navigation_url(given) == expected
