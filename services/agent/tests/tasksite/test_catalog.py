import pytest

from tracewheel.agent.tasksite.catalog import CATEGORIES, build_catalog, format_price
from tracewheel.core.errors import InvalidArgument, NotFound


def test_products_are_distinct_and_spread_over_categories() -> None:
    catalog = build_catalog(3, 400)
    assert len(catalog.products) == 400
    assert len({p.name for p in catalog.products}) == 400
    assert len({p.sku for p in catalog.products}) == 400
    assert {p.category for p in catalog.products} == set(CATEGORIES)
    for product in catalog.products:
        assert product.name.startswith(f"{product.colour} {product.material} ")
        assert 1.0 <= product.rating <= 5.0
        assert product.price_cents > 0


def test_catalog_is_deterministic_in_the_seed() -> None:
    assert build_catalog(1, 100).products == build_catalog(1, 100).products
    assert build_catalog(1, 100).products != build_catalog(2, 100).products


def test_related_items_are_in_the_same_category_and_exclude_the_item() -> None:
    catalog = build_catalog(0, 300)
    for product in catalog.products[:20]:
        related = catalog.related(product)
        assert len(related) == 3
        assert product not in related
        assert {r.category for r in related} == {product.category}


def test_lookups_raise_clear_errors() -> None:
    catalog = build_catalog(0, 300)
    with pytest.raises(NotFound, match="TW-1234"):
        catalog.get("TW-1")
    with pytest.raises(NotFound, match="known: kitchen"):
        catalog.in_category("cars")
    with pytest.raises(InvalidArgument, match="n_items"):
        build_catalog(0, 5)


def test_format_price() -> None:
    assert format_price(1205) == "$12.05"
    assert format_price(99) == "$0.99"
