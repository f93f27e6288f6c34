"""The task site: a Starlette app over a seeded catalogue, with in-memory order state.

Checkers read the server-side state through `GET /api/state`; suites clear it between tasks
with `POST /api/reset`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tracewheel.agent.tasksite import pages
from tracewheel.agent.tasksite.catalog import PAGE_SIZE, Catalog, build_catalog
from tracewheel.core.errors import NotFound

logger = logging.getLogger(__name__)


@dataclass
class Order:
    """One submitted order, as `/api/state` reports it."""

    id: int
    sku: str
    name: str
    quantity: int
    email: str
    delivery: str


@dataclass
class SiteState:
    """Everything visitors changed on the site since start or the last reset."""

    orders: list[Order] = field(default_factory=list)

    def as_json(self) -> dict[str, list[dict[str, object]]]:
        """The state as plain JSON-able data."""
        return {"orders": [asdict(o) for o in self.orders]}


def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


async def _home(request: Request) -> Response:
    return HTMLResponse(pages.home_page(_catalog(request)))


async def _category(request: Request) -> Response:
    catalog = _catalog(request)
    slug = request.path_params["slug"]
    try:
        items = catalog.in_category(slug)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    pages_total = max(1, -(-len(items) // PAGE_SIZE))
    try:
        page = int(request.query_params.get("page", "1"))
    except ValueError:
        page = 1
    page = min(max(page, 1), pages_total)
    name = items[0].category if items else slug
    shown = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return HTMLResponse(pages.category_page(name, slug, shown, page, pages_total))


async def _search(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()
    return HTMLResponse(pages.search_page(query, _catalog(request).search(query)))


async def _item(request: Request) -> Response:
    catalog = _catalog(request)
    try:
        product = catalog.get(request.path_params["sku"])
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return HTMLResponse(pages.item_page(product, catalog.related(product)))


async def _order(request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    try:
        product = _catalog(request).get(form.get("sku", ""))
        quantity = int(form.get("quantity", "1"))
    except (NotFound, ValueError) as exc:
        return HTMLResponse(pages.error_page("Order failed", str(exc)), status_code=400)
    email = form.get("email", "").strip()
    delivery = form.get("delivery", pages.DELIVERY_OPTIONS[0])
    if quantity < 1 or "@" not in email or delivery not in pages.DELIVERY_OPTIONS:
        message = "Enter a quantity of at least 1, a valid email and a delivery option."
        return HTMLResponse(pages.error_page("Order failed", message), status_code=400)
    state: SiteState = request.app.state.site
    placed = Order(len(state.orders) + 1, product.sku, product.name, quantity, email, delivery)
    state.orders.append(placed)
    logger.info("order %d stored: sku=%s quantity=%d", placed.id, placed.sku, placed.quantity)
    return RedirectResponse(f"/order/{placed.id}", status_code=303)


async def _order_done(request: Request) -> Response:
    state: SiteState = request.app.state.site
    order_id = request.path_params["order_id"]
    if not 1 <= order_id <= len(state.orders):
        raise HTTPException(404, f"no order {order_id}")
    placed = state.orders[order_id - 1]
    return HTMLResponse(pages.order_done_page(placed.id, _catalog(request).get(placed.sku), placed.quantity))


async def _api_state(request: Request) -> Response:
    return JSONResponse(request.app.state.site.as_json())


async def _api_reset(request: Request) -> Response:
    request.app.state.site.orders.clear()
    return JSONResponse({"ok": True})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return HTMLResponse(pages.error_page(f"Error {exc.status_code}", exc.detail), status_code=exc.status_code)


def create_app(seed: int = 0, n_items: int = 300) -> Starlette:
    """Build the shop for a seeded catalogue of `n_items` products, with empty order state.

    Raises:
        InvalidArgument: `n_items` is outside what the catalogue can generate.
    """
    routes = [
        Route("/", _home),
        Route("/category/{slug}", _category),
        Route("/search", _search),
        Route("/item/{sku}", _item),
        Route("/order", _order, methods=["POST"]),
        Route("/order/{order_id:int}", _order_done),
        Route("/api/state", _api_state),
        Route("/api/reset", _api_reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.catalog = build_catalog(seed, n_items)
    app.state.site = SiteState()
    return app
