"""HTML of the shop's pages: compact, semantic, script-free.

Prompt length drives everything downstream (the agent reads ARIA snapshots of these pages on
small CPUs), so every page is a heading, a few lists, links, labelled inputs and buttons.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from tracewheel.agent.tasksite.catalog import Catalog, Product, category_slug

_STYLE = "body{font-family:sans-serif;max-width:40em;margin:auto}"
DELIVERY_OPTIONS = ("Standard", "Express", "Pickup")


def layout(title: str, body: str) -> str:
    """Wrap a page body with the shared header (shop link, search) and minimal style."""
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><header><a href=/>Tracewheel Shop</a>"
        "<form action=/search role=search><input name=q type=search aria-label=Search>"
        "<button>Search</button></form></header><main>"
        f"{body}</main></body></html>"
    )


def _item_link(product: Product, new_tab: bool = False) -> str:
    target = " target=_blank" if new_tab else ""
    return f"<a href=/item/{product.sku}{target}>{escape(product.name)}</a>"


def _item_list(products: list[Product], label: str) -> str:
    rows = "".join(f"<li>{_item_link(p)} {p.price}</li>" for p in products)
    return f"<ul aria-label='{escape(label)}'>{rows}</ul>"


def home_page(catalog: Catalog) -> str:
    """Home: categories and a few featured items."""
    categories = "".join(f"<li><a href=/category/{category_slug(c)}>{escape(c)}</a></li>" for c in catalog.categories)
    featured = _item_list(list(catalog.products[:5]), "Featured")
    return layout(
        "Tracewheel Shop",
        f"<h1>Tracewheel Shop</h1><nav aria-label=Categories><ul>{categories}</ul></nav><h2>Featured</h2>{featured}",
    )


def category_page(name: str, slug: str, items: list[Product], page: int, pages: int) -> str:
    """One page of a category listing with previous/next links."""
    links = []
    if page > 1:
        links.append(f"<a href=/category/{slug}?page={page - 1}>Previous page</a>")
    if page < pages:
        links.append(f"<a href=/category/{slug}?page={page + 1}>Next page</a>")
    nav = f"<nav aria-label=Pages><p>Page {page} of {pages}</p>{' '.join(links)}</nav>"
    return layout(f"{name} - page {page}", f"<h1>{escape(name)}</h1>{_item_list(items, name)}{nav}")


def search_page(query: str, hits: list[Product], limit: int = 10) -> str:
    """Search results (at most `limit`), or a line saying there are none."""
    if not hits:
        body = "<p>No results.</p>"
    else:
        more = f"<p>Showing {limit} of {len(hits)}.</p>" if len(hits) > limit else ""
        body = _item_list(hits[:limit], "Results") + more
    return layout(f"Search: {query}", f"<h1>Results for “{escape(query)}”</h1>{body}")


def item_page(product: Product, related: list[Product]) -> str:
    """Detail page: attributes, related items (opening in a new tab) and the order form."""
    facts = (
        ("Price", product.price),
        ("Category", product.category),
        ("Colour", product.colour),
        ("Material", product.material),
        ("In stock", str(product.stock)),
        ("SKU", product.sku),
        ("Rating", f"{product.rating} of 5"),
    )
    fact_rows = "".join(f"<li>{k}: {escape(v)}</li>" for k, v in facts)
    related_rows = "".join(f"<li>{_item_link(p, new_tab=True)}</li>" for p in related)
    options = "".join(f"<option>{o}</option>" for o in DELIVERY_OPTIONS)
    form = (
        f"<form method=post action=/order aria-label=Order><input type=hidden name=sku value={product.sku}>"
        "<input name=quantity type=number min=1 value=1 aria-label=Quantity> "
        "<input name=email type=email aria-label=Email placeholder=Email> "
        f"<select name=delivery aria-label=Delivery>{options}</select> "
        "<button>Place order</button></form>"
    )
    body = (
        f"<h1>{escape(product.name)}</h1><p>{escape(product.description)}</p>"
        f"<ul aria-label=Details>{fact_rows}</ul><h2>Related items</h2>"
        f"<ul aria-label='Related items'>{related_rows}</ul><h2>Order</h2>{form}"
    )
    return layout(product.name, body)


def order_done_page(order_id: int, product: Product, quantity: int) -> str:
    """Confirmation after an order was stored."""
    body = (
        f"<h1>Order {order_id} received</h1><p>{quantity} × {escape(product.name)}.</p>"
        f"<a href=/item/{quote(product.sku)}>Back to {escape(product.name)}</a>"
    )
    return layout(f"Order {order_id}", body)


def error_page(title: str, message: str) -> str:
    """A short error page (404, bad form input)."""
    return layout(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")
