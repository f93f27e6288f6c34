import pytest

from tracewheel.agent.tasks import TEMPLATES, Task, check_task, load_suite
from tracewheel.agent.tasksite.catalog import format_price
from tracewheel.core.errors import NotFound

TRAIN = load_suite("train", 0)


def _first(template: str) -> Task:
    return next(t for t in TRAIN if t.template == template)


def test_every_template_is_in_the_default_suites() -> None:
    assert {t.template for t in TRAIN} == set(TEMPLATES)
    assert {t.template for t in load_suite("heldout", 0)} == set(TEMPLATES)


@pytest.mark.parametrize("template", ["price_lookup", "related_new_tab"])
def test_price_checkers(template: str) -> None:
    task = _first(template)
    price = format_price(task.params["price_cents"])
    assert check_task(task, task.answer).passed
    assert check_task(task, f"It is {price}").passed
    assert check_task(task, price.lstrip("$") + " dollars").passed
    wrong = check_task(task, format_price(task.params["price_cents"] + 100))
    assert not wrong.passed
    assert price in wrong.reason
    assert check_task(task, "I could not find it").score == 0.0


def test_attribute_checker() -> None:
    task = _first("attribute_search")
    value = task.params["value"]
    assert check_task(task, task.answer).passed
    assert check_task(task, f"{value.upper()}.").passed
    assert not check_task(task, "unknown").passed
    assert not check_task(task, f"9{value}").passed


def test_order_checker_reads_server_state() -> None:
    task = _first("order_form")
    p = task.params
    order = {"id": 1, "sku": p["sku"], "name": p["name"], "quantity": p["quantity"], "email": p["email"]}
    order["delivery"] = p["delivery"]
    assert check_task(task, "done", {"orders": [order]}).passed
    assert check_task(task, "", {"orders": [{**order, "email": p["email"].upper()}]}).passed
    assert not check_task(task, task.answer, {"orders": []}).passed
    assert not check_task(task, task.answer).passed
    for wrong in ({"quantity": p["quantity"] + 1}, {"sku": "TW-0000"}, {"delivery": "Nope"}, {"email": "x@y.z"}):
        assert not check_task(task, "done", {"orders": [{**order, **wrong}]}).passed


def test_compare_checker() -> None:
    task = _first("compare_price")
    cheaper = task.params["cheaper"]
    dearer = task.params["b"] if cheaper == task.params["a"] else task.params["a"]
    assert check_task(task, task.answer).passed
    assert check_task(task, cheaper.lower()).passed
    assert check_task(task, f"The {cheaper} is cheaper than the {dearer}.").passed
    assert not check_task(task, f"The {dearer}.").passed
    assert not check_task(task, f"The {dearer} costs more than the {cheaper}.").passed
    assert not check_task(task, "both cost the same").passed


def test_unknown_template_is_an_error() -> None:
    task = Task("train", "x", "nope", "?", {})
    with pytest.raises(NotFound, match="price_lookup"):
        check_task(task, "")
