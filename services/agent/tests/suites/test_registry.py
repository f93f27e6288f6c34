"""The suite registry: the shop is one suite among the added files; nothing is registered half-way."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracewheel.agent.suites import SuiteFileError, SuiteRef, SuiteRegistry
from tracewheel.agent.suites.shop import shop_suite
from tracewheel.core.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound

GOOD = """\
name: team
tasks:
  - {id: a, prompt: p, split: train, check: {kind: contains, value: x}}
  - {id: b, prompt: q, split: heldout, check: {kind: contains, value: y}}
"""


def _registry(directory: Path | None) -> SuiteRegistry:
    return SuiteRegistry(directory, {"shop": lambda: shop_suite(sizes={"train": 3, "heldout": 2})})


def test_added_files_are_listed_beside_the_shop_and_resolved_by_split(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    suite = registry.add(GOOD, "my-suite.yaml")
    assert suite.name == "team" and (tmp_path / "team.yaml").read_text() == GOOD
    assert registry.names() == ["shop", "team"]
    assert [(e.name, e.suite.split_sizes if e.suite else None) for e in registry.entries()] == [
        ("shop", {"train": 3, "heldout": 2}),
        ("team", {"train": 1, "heldout": 1}),
    ]
    held = registry.resolve("team", "heldout")
    assert str(held.ref) == "team:heldout" and [t.task_id for t in held.tasks] == ["b"]
    assert [t.task_id for t in registry.resolve("team:train", "heldout").tasks] == ["a"]
    legacy = registry.resolve("heldout", None)
    assert legacy.suite.name == "shop" and str(legacy.ref) == "heldout" and len(legacy.tasks) == 2
    assert [t.split for t in registry.resolve("shop", None).tasks] == ["train"] * 3 + ["heldout"] * 2
    assert _registry(tmp_path).get("team").tasks == suite.tasks  # another replica reads the same folder


def test_nothing_is_registered_half_way(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    bad = GOOD.replace("value: y", "value: y, colour: red")
    with pytest.raises(SuiteFileError) as caught:
        registry.add(bad, "team.yaml")
    assert caught.value.problems == ["team.yaml: task 'b': check.colour: unknown field"]
    assert list(tmp_path.iterdir()) == [] and registry.names() == ["shop"]
    registry.add(GOOD, "team.yaml")
    with pytest.raises(SuiteFileError):
        registry.add(bad, "team.yaml", replace=True)
    assert (tmp_path / "team.yaml").read_text() == GOOD  # the registered suite is untouched


def test_names_are_not_taken_twice(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    registry.add(GOOD, "team.yaml")
    with pytest.raises(Conflict, match="registered already"):
        registry.add(GOOD, "again.yaml")
    as_jsonl = '{"suite": {"name": "team"}}\n{"id": "c", "prompt": "r", "check": {"kind": "equals", "value": "z"}}\n'
    registry.add(as_jsonl, "team.jsonl", replace=True)
    assert [p.name for p in tmp_path.iterdir()] == ["team.jsonl"] and registry.get("team").tasks[0].task_id == "c"
    with pytest.raises(Conflict, match="bundled"):
        registry.add(GOOD.replace("name: team", "name: shop"), "shop.yaml")


def test_unknown_suites_splits_and_folders(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    with pytest.raises(NotFound, match="registered suites: shop"):
        registry.get("nope")
    with pytest.raises(InvalidArgument, match="neither train nor heldout"):
        SuiteRef.parse("team:test")
    registry.add(GOOD.replace("split: heldout", "split: train"), "team.yaml")
    with pytest.raises(NotFound, match="no heldout task"):
        registry.resolve("team", "heldout")
    with pytest.raises(FailedPrecondition):
        _registry(None).add(GOOD, "team.yaml")


def test_a_registered_file_that_no_longer_loads_is_listed_with_its_error(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    (tmp_path / "old.yaml").write_text(GOOD.replace("name: team", "name: old").replace("contains", "mentions"))
    [shop, old] = registry.entries()
    assert shop.suite is not None and old.suite is None and "no checker kind 'mentions'" in old.error
    with pytest.raises(SuiteFileError):
        registry.get("old")
