"""Dataset builds on hand-made traces with the tiny model's tokenizer."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from datasets import load_from_disk

from tracewheel.core.dataset_layout import read_manifest
from tracewheel.core.errors import FailedPrecondition
from tracewheel.dataset.build import check_threshold, dataset_version
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.importers import read_trelis_dir
from tracewheel.dataset.render import masked_runs
from tracewheel.dataset.store import TraceStore

END = "<|im_end|>"


def _ingest_trelis(store: TraceStore, fixtures_dir: Path) -> list[str]:
    ids = []
    for item in read_trelis_dir(fixtures_dir / "trelis"):
        store.ingest(item.trace)
        store.set_status(item.trace.id, CurationStatus.APPROVED)
        ids.append(item.trace.id)
    return ids


def _masked_texts(tokenizer: Any, row: dict[str, Any]) -> list[str]:
    return [tokenizer.decode(row["input_ids"][s:e]) for s, e in masked_runs(row["assistant_masks"])]


def test_mask_covers_exactly_the_target_turns(store, make_trace, make_builder, tokenizer) -> None:
    store.ingest(make_trace("run-1"))
    result = make_builder().build()
    rows = load_from_disk(str(Path(result.record.path) / "hf"))["train"]
    assert len(rows) == 1
    spans = _masked_texts(tokenizer, rows[0])
    assert len(spans) == 2 and all(span.endswith(END) for span in spans)
    assert spans[0].startswith("<think>\nOpen the shop first.\n</think>") and "browser_navigate" in spans[0]
    assert spans[1] == "<think>\nIt is listed first.\n</think>\nThe Red kettle." + END
    labels = rows[0]["labels"]
    assert [t for t, bit in zip(rows[0]["input_ids"], rows[0]["assistant_masks"], strict=True) if bit] == [
        x for x in labels if x != -100
    ]


def test_without_reasoning_the_turns_are_what_a_model_writes_when_it_does_not_think(
    store, make_trace, make_builder, tokenizer
) -> None:
    store.ingest(make_trace("run-1"))
    result = make_builder(reasoning=False).build()
    rows = load_from_disk(str(Path(result.record.path) / "hf"))["train"]
    spans = _masked_texts(tokenizer, rows[0])
    # what a model served with thinking disabled writes after the prompt's empty think block
    assert spans[0].startswith("<think>\n\n</think>\n<tool_call>\n") and "browser_navigate" in spans[0]
    assert spans[1] == "<think>\n\n</think>\nThe Red kettle." + END
    assert "Open the shop first." not in tokenizer.decode(rows[0]["input_ids"])
    manifest = json.loads((Path(result.record.path) / "manifest.json").read_text())
    assert manifest["reasoning"] is False
    assert "Open the shop first." in [m.reasoning_content for m in store.get("run-1").trace.messages]  # kept there


def test_multi_query_rows_train_only_their_own_turns(store, fixtures_dir, make_builder, tokenizer) -> None:
    _ingest_trelis(store, fixtures_dir)
    result = make_builder().build()
    rows = load_from_disk(str(Path(result.record.path) / "hf"))["train"]
    multi = [row for row in rows if row["targets"] == [7, 9]]
    assert len(multi) == 1
    spans = _masked_texts(tokenizer, multi[0])
    assert len(spans) == 2  # messages 2 and 5 are context in this row: rendered, not trained
    assert spans[0].startswith("<think>\nI need to click") and spans[1].endswith("costs $24.99." + END)
    text = tokenizer.decode(multi[0]["input_ids"])
    assert "The first product is the Red kettle." in text  # the earlier answer is there as context


def test_directory_manifest_and_formats(store, make_trace, fixtures_dir, make_builder) -> None:
    _ingest_trelis(store, fixtures_dir)
    store.ingest(make_trace("run-1"))
    result = make_builder(eval_ratio=0.5).build()
    path = Path(result.record.path)
    assert result.created and path.name == result.record.version and path.name.startswith("ds-")
    assert {p.name for p in path.iterdir()} == {
        "hf", "train.parquet", "eval.parquet", "train.jsonl", "eval.jsonl", "manifest.json"
    }  # fmt: skip
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["version"] == result.record.version
    assert {t["id"] for t in manifest["traces"]} == set(result.record.trace_revisions)
    assert manifest["template_sha256"] == result.record.template_sha256 and manifest["base_model"] == "tiny-qwen3"
    assert manifest["tokens"]["supervised"] == result.record.supervised_tokens > 0
    assert manifest["tokens"]["total"] > manifest["tokens"]["supervised"]
    assert manifest["tool_calls"]["browser_navigate"] >= 2 and manifest["dropped"] == []
    assert read_manifest(path).model_dump(mode="json") == manifest  # the trainer reads what was written
    loaded = load_from_disk(str(path / "hf"))
    assert len(loaded["train"]) + len(loaded["eval"]) == result.record.train_rows + result.record.eval_rows
    row = loaded["train"][0]
    assert isinstance(row["messages"], str) and isinstance(row["tools"], str)
    first = json.loads((path / "train.jsonl").read_text().splitlines()[0])
    assert set(first) == {"messages", "tools"} and isinstance(first["tools"], str)
    for message in first["messages"]:
        for call in message.get("tool_calls", []):
            assert isinstance(call["function"]["arguments"], str)


def test_over_length_rows_are_dropped_and_reported(store, make_trace, make_builder) -> None:
    store.ingest(make_trace("short"))
    store.ingest(make_trace("long", answer="kettle " * 400, task_id="other"))
    result = make_builder(max_length=300).build()
    assert [d.trace_id for d in result.dropped] == ["long"]
    manifest = json.loads((Path(result.record.path) / "manifest.json").read_text())
    assert manifest["dropped"][0]["trace_id"] == "long" and "max_length 300" in manifest["dropped"][0]["reason"]
    assert result.record.train_rows == 1


def test_empty_build_fails_and_writes_nothing(store, make_trace, make_builder, tmp_path) -> None:
    store.ingest(make_trace("failed-run", verdict="failed"))
    with pytest.raises(FailedPrecondition, match="no approved traces"):
        make_builder().build()
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").iterdir())
    assert store.list_builds() == []


def test_the_same_selection_is_not_built_twice(store, make_trace, make_builder) -> None:
    store.ingest(make_trace("run-1"))
    builder = make_builder()
    first = builder.build()
    second = builder.build()
    assert first.created and not second.created and second.record.version == first.record.version
    assert len(store.list_builds()) == 1


def test_versions_sort_by_time() -> None:
    from datetime import UTC, datetime

    early = dataset_version(datetime(2026, 11, 1, 9, 0, tzinfo=UTC), "f" * 64)
    late = dataset_version(datetime(2026, 11, 1, 10, 0, tzinfo=UTC), "0" * 64)
    assert early == "ds-20261101-090000-ffffffff" and early < late


def test_threshold_check(store, make_trace, make_builder) -> None:
    store.ingest(make_trace("run-1"))
    with pytest.raises(FailedPrecondition, match="1 approved traces since the last build, fewer than the threshold 2"):
        check_threshold(store, 2)
    assert check_threshold(store, 1) == 1
    make_builder().build()
    with pytest.raises(FailedPrecondition, match="0 approved"):
        check_threshold(store, 1)


def test_the_tokenizer_loads_on_first_use_and_needs_a_base_model(tokenizer) -> None:
    from tracewheel.dataset.tokenizer import LazyTokenizer

    with pytest.raises(FailedPrecondition, match="TW_DATASET_BASE_MODEL"):
        LazyTokenizer("").load()
    lazy = LazyTokenizer(tokenizer.name_or_path)
    assert lazy.convert_tokens_to_ids("<|im_end|>") == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_rows_follow_the_tasks_not_the_random_trace_ids(store, make_trace, make_builder) -> None:
    # ids sort the other way round from the tasks, as random ids of a concurrent suite run may
    runs = [("b-1", "task-3", "Three."), ("c-2", "task-1", "One."), ("a-3", "task-2", "Two.")]
    for trace_id, task_id, answer in runs:
        store.ingest(make_trace(trace_id, task_id=task_id, answer=answer))
    path = Path(make_builder().build().record.path)
    rows = [json.loads(line) for line in (path / "train.jsonl").read_text().splitlines()]
    assert [row["messages"][-1]["content"] for row in rows] == ["One.", "Two.", "Three."]


def test_the_training_template_is_the_setting_or_the_base_model_familys(train_template: str) -> None:
    from tracewheel.core.chat import ChatTemplateError, UnknownTemplateError
    from tracewheel.core.errors import ConfigError
    from tracewheel.dataset.build import load_chat_template

    assert load_chat_template("smollm2_tools_train") == train_template
    assert load_chat_template("", "HuggingFaceTB/SmolLM2-135M-Instruct") == train_template
    with pytest.raises(ConfigError, match="no training template is known for base model ''; set TW_DATASET_CHAT"):
        load_chat_template("")
    with pytest.raises(UnknownTemplateError, match="TW_DATASET_CHAT_TEMPLATE: 'chatml' is neither"):
        load_chat_template("chatml")
    with pytest.raises(ChatTemplateError, match="TW_DATASET_CHAT_TEMPLATE: smollm2_tools_train"):
        load_chat_template("smollm2_tools")


def test_the_manifest_records_the_tokenizer_and_a_length_from_the_base_model(
    store, make_trace, make_builder, tokenizer, tmp_path
) -> None:
    from tracewheel.core.base_model import tokenizer_sha256

    store.ingest(make_trace("run-1"))
    model = tmp_path / "Qwen3-4B"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen3", "max_position_embeddings": 40960}))

    manifest = read_manifest(Path(make_builder(base_model=str(model)).build().record.path))

    assert manifest.tokenizer_sha256 == tokenizer_sha256(tokenizer)
    assert manifest.max_length == 32768  # Qwen3's 40960 positions, capped
    assert make_builder(max_length=2048).config.max_length == 2048  # a length set is kept
    assert make_builder().config.max_length == 8192  # no config.json to read ("tiny-qwen3" is a name)


def test_a_build_without_a_base_model_is_refused_with_what_to_set(store, make_trace, make_builder) -> None:
    store.ingest(make_trace("run-1"))
    with pytest.raises(FailedPrecondition, match="set TW_DATASET_BASE_MODEL"):
        make_builder(base_model="", chat_template="").build()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_replicas_triggered_by_the_same_traces_build_them_once(
    database, request, make_trace, tokenizer, train_template, tmp_path
) -> None:
    from tracewheel.dataset.build import BuildConfig, DatasetBuilder

    location = str(tmp_path / "traces.db") if database == "sqlite" else request.getfixturevalue("postgres_url")
    config = BuildConfig(base_model="tiny-qwen3", chat_template=train_template, eval_ratio=0.0)
    with TraceStore(location) as first, TraceStore(location) as second:  # two replicas on one database
        for index in range(6):
            first.ingest(make_trace(f"run-{index}"))
        builders = [DatasetBuilder(store, tokenizer, config, tmp_path / "datasets") for store in (first, second)]
        together = threading.Barrier(2)
        results: list[Any] = [None, None]

        def build(index: int) -> None:
            together.wait()
            results[index] = builders[index].build()

        threads = [threading.Thread(target=build, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sorted(result.created for result in results) == [False, True]
        assert results[0].record.version == results[1].record.version
        assert len(first.list_builds()) == 1


def test_a_listing_without_traces_is_the_same_records_without_their_revisions(store, make_trace, make_builder) -> None:
    store.ingest(make_trace("run-1"))
    built = make_builder().build().record
    (listed,) = store.list_builds(with_traces=False)
    assert listed.trace_revisions == {} and set(built.trace_revisions) == {"run-1"}
    assert listed == built.model_copy(update={"trace_revisions": {}})
    assert store.list_builds() == [built]
