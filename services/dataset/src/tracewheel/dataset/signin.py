"""Signing in to the curation UI: the service's token once, then a signed session cookie.

| path | does |
|---|---|
| `GET /login?next=/...` | the sign-in form |
| `POST /login` | form `token`, `next`: the right token sets the session cookie and goes to `next` (a local path) |
| `POST /logout` | ends the session (the UI's script sends it with the session's CSRF token) |

The cookie is HttpOnly, SameSite=Strict, Secure over https, and signed with a key derived from
the token (`tracewheel.core.http_security`); the guard checks it and the CSRF token of every
state-changing request. Without a configured token there is nothing to sign in to: `/login`
goes to the list.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tracewheel.core.http_security import HttpSecurity, is_https

SIGN_IN_PATH = "/login"
MAX_FORM_BYTES = 4096  # a token and a path


def local_path(target: str) -> str:
    """`target` when it is a path on this site, else `/` (no open redirect to another host)."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def add_sign_in_routes(app: FastAPI, security: HttpSecurity, templates: Jinja2Templates, csp: str) -> None:
    """Adds `/login` and `/logout` to `app` (the guard leaves `/login` open)."""

    def form(request: Request, next_path: str, error: str = "", status_code: int = 200) -> HTMLResponse:
        context: dict[str, Any] = {"next": local_path(next_path), "error": error, "signed_in": False}
        response = templates.TemplateResponse(request, "signin.html", context, status_code=status_code)
        response.headers["Content-Security-Policy"] = csp
        return response

    @app.get(SIGN_IN_PATH, response_class=HTMLResponse, include_in_schema=False)
    def sign_in_form(request: Request, next_path: str = Query("/", alias="next")) -> Response:
        if security.token is None:
            return RedirectResponse(local_path(next_path), status_code=303)
        return form(request, next_path)

    @app.post(SIGN_IN_PATH, include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        body = await request.body()
        fields = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
        next_path = local_path(fields.get("next", ["/"])[0])
        if security.token is None:
            return RedirectResponse(next_path, status_code=303)
        if not security.token_matches(fields.get("token", [""])[0]):
            return form(request, next_path, "That is not this service's token (TW_DATASET_AUTH_TOKEN).", 401)
        response = RedirectResponse(next_path, status_code=303)
        response.headers["Set-Cookie"] = security.new_session(secure=is_https(request.scope))
        return response

    @app.post("/logout", include_in_schema=False)
    def sign_out(request: Request) -> Response:
        response = Response(status_code=204)
        response.headers["Set-Cookie"] = security.end_session(secure=is_https(request.scope))
        return response
