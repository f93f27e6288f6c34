"""Parameterised task templates: wording variants, a builder and a checker for each.

Template names are a public API (they appear in task ids and traces). Each template has train
phrasings and held-out phrasings; held-out tasks only use the latter, so their wording is never
seen in training.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tracewheel.agent.tasks import answers
from tracewheel.agent.tasks.model import Step, Verdict
from tracewheel.agent.tasks.steps import click, fill_form, navigate, search_and_open, select_tab
from tracewheel.agent.tasksite.catalog import Catalog, Product, format_price
from tracewheel.agent.tasksite.pages import DELIVERY_OPTIONS


@dataclass(frozen=True)
class Draft:
    """What a builder produces: prompt parameters, the reference steps and the reference answer.

    The steps' reasoning is a plan: the first names the kind of task and what is to be done,
    each later one the step it takes in that plan (docs/agent.md, "Reference thoughts are a plan").
    `answer_reasoning` is the thought before the answer.
    """

    params: dict[str, Any]
    steps: list[Step]
    answer: str
    answer_reasoning: str = ""


Builder = Callable[[Catalog, Product, Collection[str], random.Random, str], Draft | None]
Checker = Callable[[Mapping[str, Any], str, Mapping[str, Any]], Verdict]


@dataclass(frozen=True)
class Template:
    """A task family. `build` returns None when the item does not fit (e.g. needs a partner)."""

    name: str
    train_phrasings: tuple[str, ...]
    heldout_phrasings: tuple[str, ...]
    build: Builder
    check: Checker


def _price_verdict(answer: str, cents: int) -> Verdict:
    if answers.matches_price(answer, cents):
        return Verdict(True, f"answer states {format_price(cents)}")
    return Verdict(False, f"expected exactly the price {format_price(cents)}")


def _build_price_lookup(catalog: Catalog, item: Product, pool: Collection[str], rng: random.Random, base: str) -> Draft:
    page = catalog.page_of(item)
    plan = f"A price lookup: browse the {item.category} category, open the {item.name} and read its price."
    steps = [
        navigate(f"{base}/", plan),
        click("link", item.category, f"Browse the {item.category} category for the {item.name}."),
    ]
    steps += [
        click("link", "Next page", f"The {item.name} is not on this page; go to the next page.")
        for _ in range(page - 1)
    ]
    steps.append(click("link", item.name, f"Open the {item.name} to read its price."))
    params = {"name": item.name, "category": item.category, "page": page, "price_cents": item.price_cents}
    return Draft(params, steps, f"The {item.name} costs {item.price}.", "Its page shows the price.")


def _check_price(params: Mapping[str, Any], answer: str, state: Mapping[str, Any]) -> Verdict:
    return _price_verdict(answer, params["price_cents"])


_ATTRIBUTES = {"SKU": "sku", "rating": "rating", "number of units in stock": "stock"}


def _build_attribute(catalog: Catalog, item: Product, pool: Collection[str], rng: random.Random, base: str) -> Draft:
    label = rng.choice(sorted(_ATTRIBUTES))
    value = str(getattr(item, _ATTRIBUTES[label]))
    plan = f"An attribute lookup: search for the {item.name} and read its {label} on its page."
    steps = [navigate(f"{base}/", plan), *search_and_open(item.name, f"to read its {label}")]
    params = {"name": item.name, "attribute": label, "value": value}
    return Draft(params, steps, f"The {label} of the {item.name} is {value}.", f"Its page shows the {label}.")


def _check_attribute(params: Mapping[str, Any], answer: str, state: Mapping[str, Any]) -> Verdict:
    value = params["value"]
    numeric = value.replace(".", "", 1).isdigit()
    if answers.mentions_number(answer, float(value)) if numeric else answers.mentions(answer, value):
        return Verdict(True, f"answer mentions {params['value']}")
    return Verdict(False, f"expected the {params['attribute']} {params['value']!r} in the answer")


def _build_related(
    catalog: Catalog, item: Product, pool: Collection[str], rng: random.Random, base: str
) -> Draft | None:
    related = catalog.related(item)[0]
    if related.sku not in pool:
        return None
    plan = f"A related item's price: find the {item.name}, open its first related item and read that item's price."
    steps = [
        navigate(f"{base}/", plan),
        *search_and_open(item.name, "to see its related items"),
        click("link", related.name, f"Open the first related item, the {related.name}; it opens in a new tab."),
        select_tab(1, f"Switch to the new tab with the {related.name}."),
    ]
    params = {
        "name": item.name,
        "related": related.name,
        "related_sku": related.sku,
        "price_cents": related.price_cents,
    }
    params["skus"] = [item.sku, related.sku]
    answer = f"The first related item, the {related.name}, costs {related.price}."
    return Draft(params, steps, answer, f"The {related.name}'s page shows its price.")


def _build_order(catalog: Catalog, item: Product, pool: Collection[str], rng: random.Random, base: str) -> Draft:
    quantity = rng.randint(2, 5)
    email = f"{rng.choice(('alex', 'sam', 'kim', 'robin', 'jo', 'lee'))}{rng.randint(1, 99)}@example.com"
    delivery = rng.choice(DELIVERY_OPTIONS)
    plan = f"An order: find the {item.name}, fill in its order form's quantity, email and delivery, and place it."
    steps = [
        navigate(f"{base}/", plan),
        *search_and_open(item.name, "to use its order form"),
        fill_form(
            [
                ("spinbutton", "Quantity", "textbox", str(quantity)),
                ("textbox", "Email", "textbox", email),
                ("combobox", "Delivery", "combobox", delivery),
            ],
            f"Fill in the order form: quantity {quantity}, email {email}, {delivery} delivery.",
        ),
        click("button", "Place order", "Place the order."),
    ]
    params = {"name": item.name, "sku": item.sku, "quantity": quantity, "email": email, "delivery": delivery}
    answer = f"I ordered {quantity} of the {item.name} with {delivery} delivery."
    return Draft(params, steps, answer, "The order is placed.")


def _check_order(params: Mapping[str, Any], answer: str, state: Mapping[str, Any]) -> Verdict:
    orders = state.get("orders", [])
    for order in orders:
        if (
            order["sku"] == params["sku"]
            and order["quantity"] == params["quantity"]
            and order["email"].casefold() == params["email"].casefold()
            and order["delivery"] == params["delivery"]
        ):
            return Verdict(True, f"order {order['id']} matches")
    return Verdict(False, f"no order matches sku, quantity, email and delivery among {len(orders)} order(s)")


def _build_compare(
    catalog: Catalog, item: Product, pool: Collection[str], rng: random.Random, base: str
) -> Draft | None:
    partners = [
        p for p in catalog.products if p.sku in pool and p.sku != item.sku and p.price_cents != item.price_cents
    ]
    if not partners:
        return None
    other = rng.choice(partners)
    cheaper, dearer = sorted((item, other), key=lambda p: p.price_cents)
    plan = f"A price comparison: read the price of the {item.name}, then of the {other.name}, and name the cheaper."
    first, second = search_and_open(item.name, "to read its price"), search_and_open(other.name, "to read its price")
    second[0] = replace(second[0], reasoning=f"The {item.name} costs {item.price}; now search for the {other.name}.")
    steps = [navigate(f"{base}/", plan), *first, *second]
    params = {"a": item.name, "b": other.name, "cheaper": cheaper.name, "skus": [item.sku, other.sku]}
    answer = f"The {cheaper.name} is cheaper ({cheaper.price} vs {dearer.price})."
    return Draft(params, steps, answer, f"The {other.name} costs {other.price}, so the {cheaper.name} is cheaper.")


def _check_compare(params: Mapping[str, Any], answer: str, state: Mapping[str, Any]) -> Verdict:
    first = answers.first_mention(answer, [params["a"], params["b"]])
    if first == params["cheaper"]:
        return Verdict(True, f"answer names the {first} first")
    return Verdict(False, f"expected the answer to name the {params['cheaper']} (first, if both are named)")


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "price_lookup",
            (
                "What is the price of the {name}? It is listed in the {category} category.",
                "How much does the {name} from the {category} section cost?",
            ),
            ("Browse the {category} department and tell me what the {name} sells for.",),
            _build_price_lookup,
            _check_price,
        ),
        Template(
            "attribute_search",
            (
                "Use the shop's search to find the {name} and tell me its {attribute}.",
                "Search for the {name}: what is its {attribute}?",
            ),
            ("Look up the {name} with the search box and report the {attribute} shown on its page.",),
            _build_attribute,
            _check_attribute,
        ),
        Template(
            "related_new_tab",
            (
                "Open the page of the {name}, then open its first related item. What is the price of that item?",
                "Go to the {name}; among its related items, follow the first one and tell me its price.",
            ),
            ("Starting from the {name}, find out how much the first item in its related items list costs.",),
            _build_related,
            _check_price,
        ),
        Template(
            "order_form",
            (
                "Order {quantity} of the {name} with {delivery} delivery, using the email {email}.",
                "Buy {quantity} units of the {name}; my email is {email} and I want {delivery} delivery.",
            ),
            ("Please place an order for the {name}: quantity {quantity}, {delivery} delivery, contact email {email}.",),
            _build_order,
            _check_order,
        ),
        Template(
            "compare_price",
            ("Which is cheaper: the {a} or the {b}?", "Between the {a} and the {b}, which one costs less?"),
            ("I can buy either the {a} or the {b}. Tell me which of the two is less expensive.",),
            _build_compare,
            _check_compare,
        ),
    )
}
