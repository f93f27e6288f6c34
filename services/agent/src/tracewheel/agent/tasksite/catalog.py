"""The shop's catalogue, generated deterministically from a seed.

The same (seed, n_items) always yields the same products, in the same order, so task suites
built from the catalogue agree with the site they run against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from tracewheel.core.errors import InvalidArgument, NotFound

PAGE_SIZE = 10
"""Items per category page; tasks that page through a category rely on it."""

RELATED_COUNT = 3
"""Related items listed (opening in a new tab) on every detail page."""

COLOURS = ("Red", "Blue", "Green", "Black", "White", "Yellow", "Orange", "Purple", "Grey", "Pink", "Teal", "Brown")
MATERIALS = ("Steel", "Oak", "Bamboo", "Glass", "Ceramic", "Linen", "Copper", "Walnut", "Cotton", "Marble")
CATEGORIES: dict[str, tuple[str, ...]] = {
    "Kitchen": ("Kettle", "Teapot", "Colander", "Whisk", "Skillet", "Grater"),
    "Garden": ("Trowel", "Planter", "Watering Can", "Rake", "Bird Feeder", "Hose Reel"),
    "Office": ("Stapler", "Desk Lamp", "Notebook", "Pen Holder", "Letter Tray", "Bookend"),
    "Toys": ("Yo-Yo", "Kite", "Puzzle Box", "Spinning Top", "Toy Train", "Rocking Horse"),
    "Audio": ("Speaker", "Headphones", "Radio", "Turntable", "Microphone", "Earbuds"),
    "Sports": ("Yoga Mat", "Jump Rope", "Dumbbell", "Water Bottle", "Frisbee", "Racket"),
    "Bath": ("Towel", "Soap Dish", "Bath Mat", "Toothbrush Cup", "Shower Caddy", "Robe"),
    "Lighting": ("Lantern", "Floor Lamp", "Pendant", "String Lights", "Candle Holder", "Night Light"),
}
_TRAITS = ("sturdy", "lightweight", "handmade", "compact", "durable", "elegant", "classic", "modern")
_USES = ("everyday use", "small spaces", "gifts", "weekend projects", "busy mornings", "long evenings")


@dataclass(frozen=True)
class Product:
    """One product of the shop. Prices are integer cents so comparisons are exact."""

    sku: str
    name: str
    category: str
    colour: str
    material: str
    price_cents: int
    stock: int
    rating: float
    description: str

    @property
    def price(self) -> str:
        """The price as the site shows it, e.g. `$12.50`."""
        return format_price(self.price_cents)


def format_price(cents: int) -> str:
    """Format integer cents as dollars, e.g. 1250 -> `$12.50`."""
    return f"${cents // 100}.{cents % 100:02d}"


def category_slug(category: str) -> str:
    """URL slug of a category name, e.g. `Kitchen` -> `kitchen`."""
    return category.lower().replace(" ", "-")


@dataclass(frozen=True)
class Catalog:
    """All products, indexed by SKU and by category (each category sorted by name)."""

    seed: int
    products: tuple[Product, ...]

    @property
    def categories(self) -> tuple[str, ...]:
        """Category names in display order."""
        return tuple(CATEGORIES)

    def get(self, sku: str) -> Product:
        """The product with this SKU.

        Raises:
            NotFound: no product has this SKU.
        """
        for product in self.products:
            if product.sku == sku:
                return product
        raise NotFound(f"no product with SKU {sku!r}; SKUs look like TW-1234")

    def in_category(self, slug: str) -> list[Product]:
        """Products of the category with this slug, sorted by name.

        Raises:
            NotFound: no category has this slug.
        """
        for category in CATEGORIES:
            if category_slug(category) == slug:
                return sorted((p for p in self.products if p.category == category), key=lambda p: p.name)
        raise NotFound(f"no category {slug!r}; known: {', '.join(category_slug(c) for c in CATEGORIES)}")

    def page_of(self, product: Product) -> int:
        """The 1-based category page on which a product is listed."""
        listing = self.in_category(category_slug(product.category))
        return listing.index(product) // PAGE_SIZE + 1

    def related(self, product: Product) -> list[Product]:
        """The items listed as related on a product's page: the next ones in its category."""
        listing = self.in_category(category_slug(product.category))
        start = listing.index(product)
        return [listing[(start + i) % len(listing)] for i in range(1, RELATED_COUNT + 1)]

    def search(self, query: str) -> list[Product]:
        """Products whose name, category or SKU contain every word of the query, sorted by name."""
        words = query.lower().split()
        if not words:
            return []
        hits = []
        for product in self.products:
            haystack = f"{product.name} {product.category} {product.sku}".lower()
            if all(word in haystack for word in words):
                hits.append(product)
        return sorted(hits, key=lambda p: p.name)


def _make_product(rng: random.Random, sku: str, name: str, category: str, colour: str, material: str) -> Product:
    trait = rng.choice(_TRAITS)
    use = rng.choice(_USES)
    return Product(
        sku=sku,
        name=name,
        category=category,
        colour=colour,
        material=material,
        price_cents=rng.randrange(299, 25000, 25),
        stock=rng.randrange(0, 60),
        rating=rng.randrange(10, 51) / 10,
        description=f"A {trait} {material.lower()} {name.split(maxsplit=2)[-1].lower()} for {use}.",
    )


@cache
def build_catalog(seed: int = 0, n_items: int = 300) -> Catalog:
    """Generate the catalogue: `n_items` products with distinct names and SKUs.

    Raises:
        InvalidArgument: `n_items` is below 20 or above what the name space allows.
    """
    combos = [
        (c, m, cat, noun) for cat, nouns in CATEGORIES.items() for noun in nouns for c in COLOURS for m in MATERIALS
    ]
    if not 20 <= n_items <= len(combos):
        raise InvalidArgument(f"n_items must be between 20 and {len(combos)}, got {n_items}")
    rng = random.Random(seed)
    # Round-robin over categories so every category gets a similar share of items.
    by_category: dict[str, list[tuple[str, str, str, str]]] = {cat: [] for cat in CATEGORIES}
    for combo in combos:
        by_category[combo[2]].append(combo)
    for pool in by_category.values():
        rng.shuffle(pool)
    names = list(CATEGORIES)
    chosen = [by_category[names[i % len(names)]][i // len(names)] for i in range(n_items)]
    sku_numbers = rng.sample(range(1000, 10000), n_items)
    products = tuple(
        _make_product(rng, f"TW-{number}", f"{colour} {material} {noun}", cat, colour, material)
        for (colour, material, cat, noun), number in zip(chosen, sku_numbers, strict=True)
    )
    return Catalog(seed=seed, products=products)
