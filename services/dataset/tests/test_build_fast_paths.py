"""The build's faster paths give what the paths they replace give: the sandbox, the converted
messages, the decode check, the Arrow tables and the JSONL lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest
from datasets import Dataset, Features, load_from_disk
from transformers.utils.chat_template_utils import _compile_jinja_template

from tracewheel.core.dataset_layout import HF_DIR, jsonl_file
from tracewheel.core.trace import validate_trace
from tracewheel.dataset import artifacts
from tracewheel.dataset.artifacts import FEATURES, TREE_FEATURES, EncodedRow, write_dataset_dir
from tracewheel.dataset.build import BuildConfig, encode_rows
from tracewheel.dataset.render import ChatDicts, _decoder, chat_messages, chat_tools, row_messages_json, row_tools_json
from tracewheel.dataset.template_sandbox import compile_template
from tracewheel.dataset.unroll import TrainingRow, unroll

PROBES = [
    "{{ m.content }}|{{ m.missing is defined }}|{{ m.missing }}|{{ m['content'] }}",
    "{{ m.items is defined }}|{{ m.get('content') }}|{{ m.keys() | list | length }}",  # dict attributes win
    "{{ m.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ m.content.__class__.__init__ }}",
    "{{ m.update({'content': 'x'}) }}",  # a known mutable's method: refused
    "{{ tools.append(1) }}",
    "{{ m.content.upper() }}{{ m.content.format(1) }}",
    "{% set ns = namespace(a=1) %}{% set ns._x = 2 %}",
    "{{ dict(a=1) | tojson }}{{ raise_exception('no') }}",
    "{{ cycler.__init__.__globals__ }}",
]


def _render(template: jinja2.Template) -> str:
    try:
        return template.render(m={"content": "Hé {0}", "items": "a key"}, tools=[{"type": "function"}])
    except jinja2.TemplateError as error:  # SecurityError is one
        return f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("source", PROBES)
def test_the_fast_sandbox_answers_as_transformers_sandbox(source: str) -> None:
    assert _render(compile_template(source)) == _render(_compile_jinja_template(source))


def test_the_fast_sandbox_refuses_what_the_sandbox_refuses() -> None:
    assert _render(compile_template("{{ ''.__class__.__mro__ }}")).startswith("SecurityError")
    assert _render(compile_template("{{ tools.append(1) }}")).startswith("SecurityError")


def _rows(make_trace: Any) -> list[TrainingRow]:
    data = make_trace("run-1", answer="Done.\n")
    data["messages"][2]["content"] = "Looking.\n"  # as vLLM returns text before a call: as_written trims it
    data["messages"] += [
        {"role": "user", "content": 'Ünïcödé "quotes" and \\ slashes?'},
        {"role": "assistant", "content": None, "reasoning_content": "Think 👋"},
    ]
    other = make_trace("run-2")
    other["tools"].append({"type": "function", "function": {"name": "x", "description": "<b>&</b>"}})
    return [row for trace in (data, other) for row in unroll(validate_trace(trace))]


def test_converted_messages_are_the_per_row_conversion(make_trace: Any) -> None:
    chat = ChatDicts()
    rows = _rows(make_trace)
    assert len(rows) >= 3
    for row in rows:
        assert json.loads(chat.messages_json(row)) == chat_messages(row)
        assert chat.tools(row) == chat_tools(row)
        assert chat.messages_json(row) == row_messages_json(row)
        assert chat.tools_json(row) == row_tools_json(row)
        given = [{k: v for k, v in message.items() if v is not None} for message in chat_messages(row)]
        assert chat.template_messages(row) == given


def test_the_decode_check_decodes_as_the_tokenizer(tokenizer: Any) -> None:
    ids = tokenizer("Hé <|im_end|> naïve 👋🏽 ,  spaced .\n\n<tool_call>")["input_ids"]
    decode = _decoder(tokenizer)
    for end in range(1, len(ids) + 1):
        assert decode(ids[:end]) == tokenizer.decode(ids[:end], skip_special_tokens=False)


def test_a_tokenizer_that_cleans_up_decodes_through_transformers(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokenizer, "clean_up_tokenization_spaces", True)
    calls: list[list[int]] = []

    def decode(ids: list[int], **_: Any) -> str:
        calls.append(ids)
        return "x"

    monkeypatch.setattr(tokenizer, "decode", decode)
    assert _decoder(tokenizer)([1, 2]) == "x"
    assert calls == [[1, 2]]


def _encoded(make_trace: Any, tokenizer: Any, train_template: str) -> list[EncodedRow]:
    config = BuildConfig(base_model="tiny", chat_template=train_template, max_length=100_000)
    windowed = make_trace("run-w", metadata={"extra": {"observation_window": "1"}})
    rows = _rows(make_trace) + unroll(validate_trace(windowed))
    kept, dropped = encode_rows(tokenizer, config, rows)
    assert not dropped and any(e.rendered.parents is not None for e in kept)
    return kept


def test_tables_are_what_datasets_makes_of_the_same_columns(
    make_trace: Any, tokenizer: Any, train_template: str
) -> None:
    features = Features({**FEATURES, **TREE_FEATURES})
    for rows in (_encoded(make_trace, tokenizer, train_template), []):
        fast = artifacts._table(rows, features, "f")
        reference = Dataset.from_dict(_reference_columns(rows, features), features=features)
        assert fast.features == reference.features
        assert fast.data.table.equals(reference.data.table)


def _reference_columns(rows: list[EncodedRow], features: Features) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in features}
    for encoded in rows:
        ids, mask, n = encoded.rendered.input_ids, encoded.rendered.assistant_masks, len(encoded.rendered.input_ids)
        columns["position_ids"].append(encoded.rendered.position_ids or list(range(n)))
        columns["parents"].append(encoded.rendered.parents or list(range(-1, n - 1)))
        columns["trace_id"].append(encoded.row.trace_id)
        columns["messages"].append(row_messages_json(encoded.row))
        columns["tools"].append(row_tools_json(encoded.row))
        columns["targets"].append(encoded.row.targets)
        columns["input_ids"].append(ids)
        columns["assistant_masks"].append(mask)
        columns["labels"].append([token if m else -100 for token, m in zip(ids, mask, strict=True)])
    return columns


def test_jsonl_lines_and_saved_splits_read_back(
    make_trace: Any, tokenizer: Any, train_template: str, tmp_path: Path
) -> None:
    from tracewheel.core.dataset_layout import Manifest

    rows = _encoded(make_trace, tokenizer, train_template)
    manifest = Manifest.model_validate(
        {"version": "v", "built_at": "2026-01-01T00:00:00Z", "selection_sha256": "0" * 64, "base_model": "tiny"}
        | _manifest_defaults()
    )
    path = write_dataset_dir(tmp_path, "v", {"train": rows, "eval": []}, manifest)
    lines = (path / jsonl_file("train")).read_text(encoding="utf-8").splitlines()
    expected = [
        json.dumps({"messages": chat_messages(e.row), "tools": row_tools_json(e.row)}, ensure_ascii=False) for e in rows
    ]
    assert lines == expected
    saved = load_from_disk(str(path / HF_DIR))
    assert saved["train"]["input_ids"] == [e.rendered.input_ids for e in rows]
    assert len(saved["eval"]) == 0


def _manifest_defaults() -> dict[str, Any]:
    return {
        "template_sha256": "",
        "max_length": 100_000,
        "eval_ratio": 0.0,
        "split_seed": "",
        "reasoning": True,
        "traces": [],
        "rows": {"train": 0, "eval": 0},
        "tokens": {"total": 0, "supervised": 0},
    }
