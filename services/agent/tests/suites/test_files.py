"""Suite files: YAML and JSONL read into one model; bad input named by file, task and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracewheel.agent.suites import SuiteFileError, parse_suite, suite_from_spec, suite_json_schema
from tracewheel.agent.suites.spec import AllOf, Judge, Regex

DOCS = Path(__file__).resolve().parents[4] / "docs"

SUITE = """\
name: docs-site
description: questions about a small docs site
judge: {model: judge-model, base_url: "http://127.0.0.1:9/v1"}
tasks:
  - id: version
    prompt: Which version is current?
    start_url: http://127.0.0.1:8500/
    allowed_hosts: ["127.0.0.1:8500"]
    split: train
    group: lookup
    reference:
      steps:
        - {tool: browser_navigate, arguments: {url: "http://127.0.0.1:8500/"}, reasoning: Open the site.}
        - {tool: browser_click, target: {role: link, name: Releases}, reasoning: Open the releases.}
      answer: Version 2.1
    check:
      kind: all
      checks:
        - {kind: regex, pattern: '2\\.1'}
        - {kind: page_url, pattern: /releases}
  - id: summary
    prompt: Summarise the install page.
    check: {kind: judge, rubric: Mentions pip and the Python version.}
"""


def test_a_yaml_suite_becomes_tasks_with_splits_checks_and_references() -> None:
    spec = parse_suite(SUITE, "docs.yaml")
    suite = suite_from_spec(spec, "docs.yaml")
    version, summary = suite.tasks
    assert version.split == "train" and version.template == "lookup" and version.has_reference
    assert version.prompt.endswith("Start at http://127.0.0.1:8500/") and version.allowed_hosts == ("127.0.0.1:8500",)
    assert [s.tool for s in version.reference] == ["browser_navigate", "browser_click"]
    assert version.reference[1].target is not None and version.reference[1].target.name == "Releases"
    assert isinstance(version.check, AllOf) and isinstance(version.check.checks[0], Regex)
    assert summary.split in ("train", "heldout") and not summary.has_reference
    assert isinstance(summary.check, Judge) and summary.check.endpoint == spec.judge  # the suite's judge
    assert suite_from_spec(spec, "x").tasks[1].split == summary.split  # the hashed split is stable


def test_jsonl_is_one_task_per_line_with_an_optional_suite_line() -> None:
    lines = [
        {"suite": {"description": "from jsonl", "heldout_share": 1.0}},
        {"id": "a", "prompt": "2+2?", "check": {"kind": "number", "value": 4}},
        {"id": "b", "prompt": "3+3?", "split": "train", "check": {"kind": "number", "value": 6}},
    ]
    spec = parse_suite("\n".join(json.dumps(line) for line in lines) + "\n", "sums.jsonl")
    suite = suite_from_spec(spec, "sums.jsonl")
    assert spec.name == "sums" and spec.description == "from jsonl"
    assert [t.split for t in suite.tasks] == ["heldout", "train"]  # share 1.0: every unsplit task is held out


def _problems(text: str, filename: str = "bad.yaml") -> list[str]:
    with pytest.raises(SuiteFileError) as caught:
        parse_suite(text, filename)
    assert filename in str(caught.value)
    return caught.value.problems


def _suite(check: str, extra: str = "") -> str:
    return f"name: s\ntasks:\n  - id: t1\n    prompt: p\n{extra}    check: {check}\n"


def test_bad_input_names_the_file_the_task_and_the_field() -> None:
    assert _problems(_suite("{kind: contains, value: x}", "    colour: red\n")) == [
        "bad.yaml: task 't1': colour: unknown field"
    ]
    [kind] = _problems(_suite("{kind: smells_right}"))
    assert kind.startswith("bad.yaml: task 't1': check: no checker kind 'smells_right'; known kinds: equals")
    [regex] = _problems(_suite("{kind: all, checks: [{kind: contains, value: a}, {kind: regex, pattern: '(a'}]}"))
    assert regex.startswith("bad.yaml: task 't1': check.checks[1].pattern: the regular expression '(a' does not")
    [entry] = _problems(_suite("{kind: python, entry_point: 'no_such_module_xyz:check'}"))
    assert "task 't1': check.entry_point: 'no_such_module_xyz' does not import: ModuleNotFoundError" in entry
    [judge] = _problems(_suite("{kind: judge, rubric: fair}"))
    assert "task 't1': check.endpoint: a judge needs a model" in judge


def test_duplicate_ids_and_every_problem_are_listed() -> None:
    text = (
        "name: s\ntasks:\n"
        "  - {id: a, prompt: p, check: {kind: equals, value: x}}\n"
        "  - {id: a, prompt: q, check: {kind: equals, value: y}}\n"
    )
    assert _problems(text) == ["bad.yaml: task 'a': id: duplicate of task #1"]
    two = (
        "name: s\ntasks:\n  - {id: a, prompt: p, check: {kind: equals}}\n  - {id: b, check: {kind: equals, value: 1}}\n"
    )
    problems = _problems(two)
    assert "bad.yaml: task 'a': check.value: Field required" in problems
    assert "bad.yaml: task 'b': prompt: Field required" in problems


def test_files_that_are_not_suites() -> None:
    assert _problems("name: [unclosed", "x.yaml")[0].startswith("x.yaml: not YAML")
    assert _problems("- a list", "x.yml") == ["x.yml: a suite is a mapping with `name` and `tasks`"]
    assert _problems('{"id": "a"\n', "x.jsonl")[0].startswith("x.jsonl: line 1: not JSON")
    assert _problems("name: s\n", "x.txt") == ["x.txt: a suite file ends in .yaml, .yml or .jsonl"]
    line = json.dumps({"id": "a", "prompt": "p", "check": {"kind": "equals", "value": "x"}, "extra": 1})
    assert _problems("\n" + line, "x.jsonl") == ["x.jsonl: task 'a' (line 2): extra: unknown field"]


def test_the_published_json_schema_is_the_models() -> None:
    published = json.loads((DOCS / "suite.schema.json").read_text())
    assert published == suite_json_schema(), "regenerate with `tracewheel suites schema > docs/suite.schema.json`"
