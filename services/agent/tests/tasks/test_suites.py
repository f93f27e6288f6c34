import pytest

from tracewheel.agent.tasks import TEMPLATES, load_suite, slice_tasks, split_items
from tracewheel.agent.tasks.suites import phrasings
from tracewheel.agent.tasksite.catalog import build_catalog
from tracewheel.core.errors import FailedPrecondition, InvalidArgument, NotFound


def _skus(tasks: list) -> set[str]:
    return {sku for t in tasks for sku in t.params["skus"]}


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_train_and_heldout_are_disjoint_in_items_and_phrasing(seed: int) -> None:
    train, heldout = load_suite("train", seed), load_suite("heldout", seed)
    assert (len(train), len(heldout)) == (40, 20)
    assert not _skus(train) & _skus(heldout)
    pools = split_items(build_catalog(seed, 300))
    assert _skus(train) <= pools["train"]
    assert _skus(heldout) <= pools["heldout"]
    assert not {t.params["phrasing"] for t in train} & {t.params["phrasing"] for t in heldout}
    for template in TEMPLATES.values():
        assert not set(phrasings(template, "train")) & set(phrasings(template, "heldout"))


def test_item_names_in_prompts_come_from_their_suite_only() -> None:
    catalog = build_catalog(0, 300)
    heldout_names = {catalog.get(s).name for s in split_items(catalog)["heldout"]}
    for task in load_suite("train", 0):
        assert not any(name in task.prompt for name in heldout_names)


def test_suites_are_deterministic_and_sized() -> None:
    assert load_suite("heldout", 3) == load_suite("heldout", 3)
    assert load_suite("heldout", 3) != load_suite("heldout", 4)
    tasks = load_suite("train", 0, size=7, base_url="http://site:9/")
    assert len(tasks) == 7
    assert len({t.task_id for t in tasks}) == 7
    assert all("http://site:9/" in t.prompt and "{" not in t.prompt for t in tasks)
    assert tasks[0].reference[0].arguments == {"url": "http://site:9/"}
    assert all(t.reference and t.answer for t in tasks)


def test_bad_suite_arguments() -> None:
    with pytest.raises(NotFound, match="train, heldout"):
        load_suite("test")
    with pytest.raises(InvalidArgument):
        load_suite("train", size=0)
    with pytest.raises(FailedPrecondition, match="n_items"):
        load_suite("heldout", size=30, n_items=40)


def test_a_slice_names_the_same_tasks_as_the_whole_suite() -> None:
    tasks = load_suite("train", 0, size=10)
    assert slice_tasks(tasks) == tasks
    assert slice_tasks(tasks, 0, 6) == tasks[:6]
    assert slice_tasks(tasks, 6) == tasks[6:] == load_suite("train", 0, size=10)[6:]
    assert slice_tasks(tasks, 8, 5) == tasks[8:]  # a count past the end stops at the end
    with pytest.raises(InvalidArgument, match="past the end of a suite of 10 tasks"):
        slice_tasks(tasks, 10)
    with pytest.raises(InvalidArgument, match="got -1 and 0"):
        slice_tasks(tasks, -1)
    with pytest.raises(InvalidArgument, match="got 0 and -2"):
        slice_tasks(tasks, 0, -2)
