import re

import pytest
from starlette.testclient import TestClient

from tracewheel.agent.tasksite import build_catalog, create_app
from tracewheel.agent.tasksite.catalog import PAGE_SIZE


@pytest.fixture
def client() -> TestClient:
    with TestClient(create_app(seed=0, n_items=300)) as c:
        yield c


def _item_links(html: str) -> list[str]:
    return re.findall(r"<a href=/item/(TW-\d+)", html)


def test_home_lists_categories_and_featured_items(client: TestClient) -> None:
    html = client.get("/").text
    assert "<h1>Tracewheel Shop</h1>" in html
    assert html.count("/category/") == 8
    assert len(_item_links(html)) == 5
    assert "<script" not in html
    assert len(html) < 2000


def test_category_pages_partition_the_category(client: TestClient) -> None:
    catalog = build_catalog(0, 300)
    listing = catalog.in_category("kitchen")
    pages = -(-len(listing) // PAGE_SIZE)
    seen = []
    for page in range(1, pages + 1):
        html = client.get(f"/category/kitchen?page={page}").text
        assert f"Page {page} of {pages}" in html
        assert ("Next page" in html) == (page < pages)
        assert ("Previous page" in html) == (page > 1)
        seen += _item_links(html)
    assert seen == [p.sku for p in listing]
    assert len(_item_links(client.get("/category/kitchen").text)) == PAGE_SIZE


def test_category_page_out_of_range_is_clamped_and_unknown_is_404(client: TestClient) -> None:
    assert "Page 1 of" in client.get("/category/garden?page=-3").text
    assert "Page 1 of" in client.get("/category/garden?page=abc").text
    assert client.get("/category/garden?page=999").text.count("Next page") == 0
    response = client.get("/category/nope")
    assert response.status_code == 404
    assert "known: kitchen" in response.text


def test_search_finds_by_name_words_and_sku(client: TestClient) -> None:
    product = build_catalog(0, 300).products[7]
    assert product.sku in _item_links(client.get("/search", params={"q": product.name.lower()}).text)
    assert _item_links(client.get("/search", params={"q": product.sku}).text) == [product.sku]
    assert "No results." in client.get("/search", params={"q": "zeppelin"}).text
    assert "No results." in client.get("/search").text


def test_detail_page_shows_attributes_related_in_new_tab_and_order_form(client: TestClient) -> None:
    catalog = build_catalog(0, 300)
    product = catalog.products[0]
    html = client.get(f"/item/{product.sku}").text
    for fact in (product.price, product.colour, product.sku, f"In stock: {product.stock}", product.description):
        assert fact in html
    for related in catalog.related(product):
        assert f"<a href=/item/{related.sku} target=_blank>" in html
    assert "<button>Place order</button>" in html
    assert client.get("/item/TW-0000").status_code == 404


def test_order_is_stored_listed_and_reset(client: TestClient) -> None:
    sku = build_catalog(0, 300).products[3].sku
    form = {"sku": sku, "quantity": "3", "email": "kim@example.com", "delivery": "Express"}
    response = client.post("/order", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert "Order 1 received" in client.get(response.headers["location"]).text
    orders = client.get("/api/state").json()["orders"]
    assert orders == [
        {
            "id": 1,
            "sku": sku,
            "name": orders[0]["name"],
            "quantity": 3,
            "email": "kim@example.com",
            "delivery": "Express",
        }
    ]
    assert client.post("/api/reset").json() == {"ok": True}
    assert client.get("/api/state").json() == {"orders": []}
    assert client.get("/order/1").status_code == 404


@pytest.mark.parametrize(
    "override",
    [
        {"sku": "TW-0000"},
        {"sku": ""},
        {"quantity": "0"},
        {"quantity": "x"},
        {"email": "nobody"},
        {"delivery": "Teleport"},
    ],
)
def test_invalid_orders_are_rejected_and_not_stored(client: TestClient, override: dict[str, str]) -> None:
    valid = {"sku": build_catalog(0, 300).products[0].sku, "quantity": "1", "email": "a@b.c", "delivery": "Standard"}
    response = client.post("/order", data={**valid, **override})
    assert response.status_code == 400
    assert client.get("/api/state").json() == {"orders": []}


def test_site_is_deterministic_in_the_seed() -> None:
    paths = ["/", "/category/toys?page=2", "/search?q=red"]
    with TestClient(create_app(seed=5)) as a, TestClient(create_app(seed=5)) as b, TestClient(create_app(seed=6)) as c:
        assert [a.get(p).text for p in paths] == [b.get(p).text for p in paths]
        assert [a.get(p).text for p in paths] != [c.get(p).text for p in paths]
