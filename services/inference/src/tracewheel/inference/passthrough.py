"""Pass-through mode: this service in front of any OpenAI-compatible server (a teacher on
vLLM, a hosted API), so capture can record the conversations a team's agent has with it.

`/v1/chat/completions` (whole and streamed) and `/v1/models` are forwarded as they are: the
request body unchanged, the upstream's status, headers (hop-by-hop ones aside) and body bytes
back unchanged, SSE chunks relayed as they arrive. The upstream is asked for an uncompressed
body (`Accept-Encoding: identity`) so the bytes relayed are the bytes it meant. An upstream
that cannot be reached answers 502 in OpenAI's error shape, naming it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tracewheel.core.errors import FailedPrecondition, TracewheelError
from tracewheel.core.http_security import HttpGuard, HttpSecurity
from tracewheel.core.metrics import instrument

log = logging.getLogger(__name__)

_HOP_BY_HOP = {
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authenticate", "proxy-authorization", "content-length", "content-encoding",
}  # fmt: skip


class UpstreamOptions(BaseModel):
    """The server pass-through mode (`TW_INFERENCE_BACKEND=upstream`) forwards to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    upstream_url: str = Field(
        default="",
        description="Base URL of the OpenAI-compatible server, as an OpenAI client takes it "
        "(e.g. http://teacher:8000/v1); only with TW_INFERENCE_BACKEND=upstream.",
    )
    upstream_api_key: SecretStr | None = Field(
        default=None, description="Sent to the upstream as `Authorization: Bearer <key>`; unset: no Authorization."
    )
    upstream_timeout_s: float = Field(default=600.0, gt=0, description="Seconds an upstream reply may take.")


def upstream_error(message: str, status: int = 502) -> JSONResponse:
    """An OpenAI-shaped error response."""
    body = {"error": {"message": message, "type": "BadGatewayError", "param": None, "code": status}}
    return JSONResponse(body, status_code=status)


def _response_headers(reply: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP}


async def forward(
    client: httpx.AsyncClient, method: str, path: str, content: bytes, headers: dict[str, str]
) -> Response:
    """Sends one request upstream and relays the reply: streamed when it is an event stream."""
    request = client.build_request(method, path, content=content or None, headers=headers)
    try:
        reply = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        log.warning("upstream %s unreachable: %s", request.url, exc)
        return upstream_error(f"upstream {request.url} unreachable: {type(exc).__name__}: {exc}")
    if reply.headers.get("content-type", "").startswith("text/event-stream"):

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in reply.aiter_raw():
                    yield chunk
            finally:
                with anyio.CancelScope(shield=True):  # a client gone mid-stream cancels us; still close upstream
                    await reply.aclose()

        return StreamingResponse(relay(), status_code=reply.status_code, headers=_response_headers(reply))
    try:
        body = await reply.aread()
    except httpx.TransportError as exc:
        return upstream_error(f"upstream {request.url} broke off its reply: {type(exc).__name__}: {exc}")
    finally:
        await reply.aclose()
    return Response(body, status_code=reply.status_code, headers=_response_headers(reply))


class NoAdapters:
    """The adapter backend of pass-through mode: adapters live on the upstream, not here."""

    def load(self, name: str, path: str, *, first: bool) -> None:
        raise FailedPrecondition("pass-through mode (TW_INFERENCE_BACKEND=upstream) loads no adapters")

    def unload(self, name: str, *, last: bool) -> None:
        raise FailedPrecondition("pass-through mode (TW_INFERENCE_BACKEND=upstream) loads no adapters")


_GUARD_ERRORS = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    413: "RequestTooLargeError",
}


def _error_body(status: int, message: str) -> dict[str, object]:
    kind = _GUARD_ERRORS.get(status, "BadRequestError")
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def create_passthrough_app(
    options: UpstreamOptions, security: HttpSecurity | None = None
) -> tuple[FastAPI, httpx.AsyncClient]:
    """The OpenAI routes forwarded to `options.upstream_url`, and the HTTP client to close at shutdown;
    `security` guards every route but /health, as on the other backends (the upstream key is ours to protect)."""
    base = options.upstream_url.rstrip("/")
    client = httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(options.upstream_timeout_s, connect=5.0))
    app = FastAPI(title="tracewheel inference (pass-through)", docs_url=None, redoc_url=None)
    if security is not None:
        app.add_middleware(HttpGuard, security=security, error_body=_error_body)
    instrument(app, "inference")  # after the guard, so its refusals are counted

    def upstream_headers(request: Request) -> dict[str, str]:
        headers = {"accept-encoding": "identity"}
        for name in ("content-type", "accept"):
            if name in request.headers:
                headers[name] = request.headers[name]
        if options.upstream_api_key is not None:
            headers["authorization"] = f"Bearer {options.upstream_api_key.get_secret_value()}"
        return headers

    @app.exception_handler(TracewheelError)
    async def domain_error(request: Request, exc: TracewheelError) -> JSONResponse:
        body = {"error": {"message": str(exc), "type": type(exc).__name__, "param": None, "code": exc.http_status}}
        return JSONResponse(body, status_code=exc.http_status)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        return await forward(client, "GET", "/models", b"", upstream_headers(request))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await forward(client, "POST", "/chat/completions", await request.body(), upstream_headers(request))

    return app, client
