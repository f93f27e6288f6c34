"""HTTP security shared by the services' ASGI apps (the OpenAI API, the dataset REST API and UI).

`HttpGuard` wraps an app; on every HTTP request it:
- refuses a Host header that is not an allowed host (400), so a page on another site that
  rebinds its DNS name to 127.0.0.1 cannot talk to a service bound to localhost;
- refuses a state-changing request (POST, PUT, PATCH, DELETE) whose Origin, or Referer when
  there is no Origin, is another site (403);
- refuses a body over the limit (413): by its Content-Length before anything is read, or as
  soon as a chunked body passes it;
- when a token is configured, on every path but the open ones (health, a sign-in page),
  requires `Authorization: Bearer <token>` (401) or, in an app with a sign-in page, a signed
  session cookie; a state-changing request on a session cookie also needs that session's CSRF
  token in the `X-CSRF-Token` header (403). A browser page request without either is sent to
  the sign-in page.
Error bodies are in the app's own shape (`ErrorBody`). The guard is plain ASGI (no Starlette).

Session cookies are `<id>.<expiry>.<HMAC>` signed with a key derived from the token, so every
replica accepts them, nothing is stored, and changing the token signs everyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ErrorBody = Callable[[int, str], dict[str, Any]]
"""`(status, message) -> JSON body` of a refusal, in the app's error shape."""
Refusal = tuple[int, str, list[tuple[str, str]]]
"""Status, message and extra response headers."""

SESSION_COOKIE = "tw_session"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "*"})
MIB = 1024 * 1024
DRAIN_MAX_BYTES = 64 * MIB  # read (and drop) up to this much of a refused body, so the client hears the answer


class HttpOptions(BaseModel):
    """The HTTP listener's limits and allowed hosts; service settings inherit them (`TW_<SERVICE>_HTTP_*`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    http_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the HTTP server answers to, comma separated ('*': any). Empty: the bind address "
        "and localhost names, or any host when it binds every interface (0.0.0.0).",
    )
    http_max_body_bytes: int = Field(
        default=8 * MIB, ge=1024, description="Largest HTTP request body; a bigger one is refused with 413."
    )

    @field_validator("http_allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


def allowed_hosts(configured: list[str], bind_host: str) -> frozenset[str] | None:
    """The host names to answer to; None: any (configured '*', or a bind on every interface)."""
    if "*" in configured or (not configured and bind_host in WILDCARD_BINDS):
        return None
    names = configured or [bind_host, *LOCAL_HOSTS]
    return frozenset(name.lower().strip("[]") for name in names)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class HttpSecurity:
    """What an app's `HttpGuard` enforces, and the session cookies of its sign-in page."""

    token: str | None = None
    hosts: frozenset[str] | None = None
    max_body_bytes: int | None = None
    open_paths: tuple[str, ...] = ("/health",)
    """Paths served to anyone; one ending in '/' opens everything under it."""
    sign_in_path: str | None = None
    """The app's sign-in page: session cookies are accepted and pages without one are sent there."""
    setting_prefix: str = "TW_"
    _key: bytes = field(init=False, repr=False, default=b"")

    def __post_init__(self) -> None:
        if self.token:
            key = hmac.new(self.token.encode(), b"tracewheel session cookie", hashlib.sha256).digest()
            object.__setattr__(self, "_key", key)

    @classmethod
    def from_settings(
        cls,
        auth_token: SecretStr | None,
        options: HttpOptions,
        bind_host: str,
        setting_prefix: str,
        *,
        open_paths: tuple[str, ...] = ("/health",),
        sign_in_path: str | None = None,
    ) -> HttpSecurity:
        """The security of a service's HTTP listener from its settings."""
        return cls(
            token=auth_token.get_secret_value() if auth_token else None,
            hosts=allowed_hosts(options.http_allowed_hosts, bind_host),
            max_body_bytes=options.http_max_body_bytes,
            open_paths=open_paths,
            sign_in_path=sign_in_path,
            setting_prefix=setting_prefix,
        )

    def token_matches(self, sent: str) -> bool:
        """Whether `sent` is the configured token (constant time); False when none is configured."""
        return self.token is not None and hmac.compare_digest(sent.encode(), self.token.encode())

    def is_open(self, path: str) -> bool:
        return any(path == p or (p.endswith("/") and path.startswith(p)) for p in self.open_paths)

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def new_session(self, *, secure: bool, now: float | None = None) -> str:
        """A `Set-Cookie` value for a new signed session (HttpOnly, SameSite=Strict, Secure over https)."""
        payload = f"{secrets.token_urlsafe(18)}.{int(now if now is not None else time.time()) + SESSION_TTL_S}"
        attributes = f"Path=/; Max-Age={SESSION_TTL_S}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
        return f"{SESSION_COOKIE}={payload}.{self._sign(payload)}; {attributes}"

    @staticmethod
    def end_session(*, secure: bool) -> str:
        """A `Set-Cookie` value that removes the session cookie."""
        return f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")

    def session_id(self, cookie: str, now: float | None = None) -> str | None:
        """The id of a session cookie this service signed and that has not expired, else None."""
        if not self._key:
            return None
        sid, _, rest = cookie.partition(".")
        expires, _, signature = rest.partition(".")
        if not (sid and expires.isdigit() and signature):
            return None
        if not hmac.compare_digest(signature, self._sign(f"{sid}.{expires}")):
            return None
        return sid if int(expires) > (now if now is not None else time.time()) else None

    def csrf_token(self, session_id: str) -> str:
        """The CSRF token of a session: state-changing requests on its cookie send it in `X-CSRF-Token`."""
        return self._sign(f"csrf:{session_id}")


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (the last of repeated ones)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def _host_and_port(host: str) -> tuple[str, int | None] | None:
    """A Host header's name (lower case, no brackets) and its explicit port; None when unreadable."""
    try:
        parts = urlsplit(f"//{host}")
        return (parts.hostname, parts.port) if parts.hostname else None
    except ValueError:
        return None


def _same_site(claimed: str, host: str) -> bool:
    """Whether an Origin or Referer names this service (its Host header): same name, and the same
    port when the Host gives one (else a default port). The scheme is not compared: behind a TLS
    proxy the browser's https is the server's http."""
    here = _host_and_port(host)
    try:
        parts = urlsplit(claimed)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return False
    if here is None or parts.hostname != here[0]:
        return False
    return port == here[1] if here[1] is not None else port in (80, 443)


def is_https(scope: Scope) -> bool:
    return scope.get("scheme") == "https"


class _BodyTooLarge(Exception):
    pass


async def _drain(receive: Receive, most: int) -> None:
    """Reads what is left of a refused request's body, up to `most` bytes: a server that answers
    while the client still sends makes the client see a reset connection instead of the answer."""
    seen = 0
    while seen <= most:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
        seen += len(message.get("body", b""))


class HttpGuard:
    """ASGI middleware enforcing an `HttpSecurity` (see the module docstring)."""

    def __init__(self, app: ASGIApp, security: HttpSecurity, error_body: ErrorBody) -> None:
        self.app = app
        self.security = security
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        refusal = self._host_or_origin(scope, headers) or self._too_large(headers)
        if refusal is None and not self.security.is_open(scope["path"]):
            refusal = self._auth(scope, headers)
        if refusal is not None:
            await _drain(receive, DRAIN_MAX_BYTES)
            await self._reply(send, *refusal)
        elif self.security.max_body_bytes is None:
            await self.app(scope, receive, send)
        else:
            await self._limit_body(scope, receive, send, self.security.max_body_bytes)

    def _host_or_origin(self, scope: Scope, headers: dict[str, str]) -> Refusal | None:
        host = headers.get("host", "")
        here = _host_and_port(host)
        hosts = self.security.hosts
        if hosts is not None and (here is None or here[0] not in hosts):
            return (
                400,
                f"Host header {host!r} is not an allowed host of this service ({', '.join(sorted(hosts))}); "
                f"set {self.security.setting_prefix}HTTP_ALLOWED_HOSTS to serve another name",
                [],
            )
        if scope["method"] in SAFE_METHODS:
            return None
        claimed = headers.get("origin") or headers.get("referer")
        if claimed is not None and not _same_site(claimed, host):
            return 403, f"cross-origin request refused: origin {claimed!r} is not this service ({host})", []
        return None

    def _too_large(self, headers: dict[str, str]) -> Refusal | None:
        limit = self.security.max_body_bytes
        length = headers.get("content-length", "")
        if limit is not None and length.isdigit() and int(length) > limit:
            return 413, self._too_large_message(int(length), limit), []
        return None

    def _too_large_message(self, length: int | None, limit: int) -> str:
        size = f"of {length} bytes " if length is not None else ""
        return (
            f"request body {size}is over the limit of {limit} bytes ({self.security.setting_prefix}HTTP_MAX_BODY_BYTES)"
        )

    def _auth(self, scope: Scope, headers: dict[str, str]) -> Refusal | None:
        security = self.security
        if security.token is None:
            return None
        scheme, _, sent = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and security.token_matches(sent.strip()):
            return None
        if security.sign_in_path is not None:
            session = self._session(headers)
            if session is not None:
                return self._session_auth(scope, headers, session)
            if scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
                query = scope.get("query_string", b"").decode("latin-1")
                target = quote(scope["path"] + (f"?{query}" if query else ""), safe="")
                return 303, "sign in first", [("location", f"{security.sign_in_path}?next={target}")]
        return 401, "missing or wrong bearer token (Authorization: Bearer <token>)", [("www-authenticate", "Bearer")]

    def _session_auth(self, scope: Scope, headers: dict[str, str], session: str) -> Refusal | None:
        """A request on a valid session cookie: state-changing ones need the session's CSRF token."""
        csrf = self.security.csrf_token(session)
        sent = headers.get(CSRF_HEADER, "")
        if scope["method"] not in SAFE_METHODS and not hmac.compare_digest(sent.encode(), csrf.encode()):
            return 403, "missing or wrong CSRF token (X-CSRF-Token); reload the page", []
        scope.setdefault("state", {})["csrf_token"] = csrf  # the pages hand it to their script
        return None

    def _session(self, headers: dict[str, str]) -> str | None:
        try:
            morsel = SimpleCookie(headers.get("cookie", "")).get(SESSION_COOKIE)
        except CookieError:
            return None
        return self.security.session_id(morsel.value) if morsel is not None else None

    async def _limit_body(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received, too_large, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                return  # the app's answer to the aborted read is replaced by the 413
            started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await _drain(receive, DRAIN_MAX_BYTES)
            await self._reply(send, 413, self._too_large_message(None, limit))

    async def _reply(self, send: Send, status: int, message: str, extra: list[tuple[str, str]] | None = None) -> None:
        data = json.dumps(self.error_body(status, message)).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        head += [(name.encode(), value.encode("latin-1")) for name, value in extra or []]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": data})
