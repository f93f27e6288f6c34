"""The console's dataset pages: token runs, folder checks, row reading, and the pages over a real build."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tracewheel.core.dataset_layout import Manifest, SplitCounts, write_manifest
from tracewheel.core.errors import FailedPrecondition, NotFound
from tracewheel.dataset.console import ConsoleConfig
from tracewheel.dataset.console.dataset_files import build_folder, check_split, read_row, row_summaries, split_size
from tracewheel.dataset.console.token_view import TokenizerCache, TokenRun, decode_runs, token_runs
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore

from .conftest import TraceFactory


def _spans(runs: list[TokenRun]) -> list[tuple[int, int, bool, int | None]]:
    return [(run.start, run.end, run.trained, run.branch_from) for run in runs]


def test_runs_split_where_the_trained_state_changes() -> None:
    flags = [False, False, True, True, True, False, True]
    assert _spans(token_runs(flags)) == [
        (0, 2, False, None),
        (2, 5, True, None),
        (5, 6, False, None),
        (6, 7, True, None),
    ]
    assert token_runs([]) == []
    assert _spans(token_runs([True])) == [(0, 1, True, None)]


def test_a_packed_row_starts_a_run_at_each_branch() -> None:
    # rows [a b c D] and [a b e F] packed: e hangs off b (index 1), not off D (index 3)
    flags = [False, False, False, True, False, True]
    parents = [-1, 0, 1, 2, 1, 4]
    assert _spans(token_runs(flags, parents)) == [
        (0, 3, False, None),
        (3, 4, True, None),
        (4, 5, False, 1),
        (5, 6, True, None),
    ]
    unpacked = list(range(-1, len(flags) - 1))
    assert token_runs(flags, unpacked) == token_runs(flags)
    with pytest.raises(ValueError, match="2 parents for 6 tokens"):
        token_runs(flags, [-1, 0])


def test_runs_decode_to_the_text_they_were_made_of(tokenizer: Any) -> None:
    context, trained = "<|im_start|>user\nIs <b>it</b> & co?<|im_end|>\n", "The Red kettle.<|im_end|>"
    ids_context = tokenizer(context, add_special_tokens=False)["input_ids"]
    ids_trained = tokenizer(trained, add_special_tokens=False)["input_ids"]
    flags = [False] * len(ids_context) + [True] * len(ids_trained)
    runs = decode_runs(tokenizer, ids_context + ids_trained, token_runs(flags))
    assert [(run.text, run.trained) for run in runs] == [(context, False), (trained, True)]
    assert runs[1].tokens == len(ids_trained)
    assert decode_runs(None, [5, 6, 7], token_runs([False, True, True]))[1].text == "6 7 "


def test_the_tokenizer_cache_loads_a_folder_once_and_says_what_is_missing(tmp_path: Path) -> None:
    from tracewheel.inference.testing import TEST_CACHE, smollm2_tokenizer_dir

    cache = TokenizerCache()
    folder = str(smollm2_tokenizer_dir(TEST_CACHE))
    assert cache.get(folder) is cache.get(folder)
    with pytest.raises(FailedPrecondition, match="records no base model"):
        cache.get("")
    with pytest.raises(FailedPrecondition, match="is not on this host"):
        cache.get(str(tmp_path / "gone"))


def test_a_version_names_only_a_folder_directly_under_the_artifacts_dir(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    (root / "ds-1").mkdir(parents=True)
    (root / ".ds-2-staging").mkdir()
    (tmp_path / "secret").mkdir()
    (root / "escape").symlink_to(tmp_path / "secret")
    assert build_folder(root, "ds-1") == (root / "ds-1").resolve()
    for version in ("..", "../secret", "ds-1/..", ".ds-2-staging", "escape", "nope", "", "a\\b", "ds-1/"):
        with pytest.raises(NotFound):
            build_folder(root, version)
    with pytest.raises(NotFound, match="not on this host"):
        build_folder(None, "ds-1")
    assert check_split("eval") == "eval"
    with pytest.raises(NotFound, match="train and eval"):
        check_split("../train")


def test_rows_are_read_from_their_row_groups(tmp_path: Path) -> None:
    labels = [[-100] * n + [1] * (n % 3) for n in range(1, 11)]
    table = pa.table({"trace_id": [f"t{n}" for n in range(10)], "input_ids": labels, "labels": labels})
    pq.write_table(table, tmp_path / "train.parquet", row_group_size=3)
    assert split_size(tmp_path, "train") == 10
    summaries = row_summaries(tmp_path, "train", 2, 5)
    assert [(s.index, s.trace_id, s.tokens, s.trained) for s in summaries] == [
        (index, f"t{index}", len(labels[index]), (index + 1) % 3) for index in range(2, 7)
    ]
    row = read_row(tmp_path, "train", 7)
    assert row.trace_id == "t7" and row.columns["labels"] == labels[7] and row.size == 10
    with pytest.raises(NotFound, match="has 10 rows; there is no row 10"):
        read_row(tmp_path, "train", 10)


def test_a_hand_made_folder_is_read_line_by_line(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": f"q{n}"}], "tools": "[]"} for n in range(3)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert split_size(tmp_path, "train") == 3 and split_size(tmp_path, "eval") == 0
    assert [s.tokens for s in row_summaries(tmp_path, "train", 1, 5)] == [None, None]
    assert '"q2"' in read_row(tmp_path, "train", 2).jsonl


@pytest.fixture
def client(
    store: TraceStore, make_trace: TraceFactory, make_builder: Callable[..., Any], tmp_path: Path
) -> Iterator[tuple[TestClient, str]]:
    """The app over a real build of one trace, with a hand-made and a broken folder beside it."""
    from tracewheel.inference.testing import TEST_CACHE, smollm2_tokenizer_dir

    store.ingest(make_trace("run-1", answer="<script>alert(1)</script> & kettle"))
    version = make_builder(base_model=str(smollm2_tokenizer_dir(TEST_CACHE))).build().record.version
    root = tmp_path / "datasets"
    (root / "by-hand").mkdir()
    write_manifest(root / "by-hand", Manifest(version="by-hand", rows=SplitCounts(train=1)))
    (root / "by-hand" / "train.jsonl").write_text('{"messages": [], "tools": "[]"}\n')
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text('{"rows": "many"}')
    app = create_app(store, None, console=ConsoleConfig(artifacts_dir=root))  # type: ignore[arg-type]
    with TestClient(app) as opened:
        yield opened, version


def test_the_pages_show_a_real_build(client: tuple[TestClient, str]) -> None:
    http, version = client
    listing = http.get("/console/datasets").text
    assert version in listing and "by-hand" in listing and "broken" in listing and "is not a valid manifest" in listing
    manifest = http.get(f"/console/datasets/{version}").text
    assert "smollm2_tools_train" in manifest and f"/console/datasets/{version}/rows/train/0" in manifest
    row = http.get(f"/console/datasets/{version}/rows/train/0")
    assert row.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; kettle" in row.text and "<script>alert" not in row.text
    assert '<span class="trained"' in row.text and 'href="/traces/run-1"' in row.text
    assert "no token ids or labels" in http.get("/console/datasets/by-hand/rows/train/0").text
    broken = http.get("/console/datasets/broken")
    assert broken.status_code == 200 and "rows: Input should be a valid dictionary" in broken.text


def test_bad_addresses_are_a_404_that_says_why(client: tuple[TestClient, str]) -> None:
    http, version = client
    cases = {
        "/console/datasets/ds-unknown": "no dataset folder 'ds-unknown'",
        f"/console/datasets/{version}/rows/test/0": "no split 'test'",
        f"/console/datasets/{version}/rows/train/1": "has 1 rows; there is no row 1",
        f"/console/datasets/{version}/rows/train/-1": "is not a row number",
        "/console/datasets/..%2F..%2Fetc/rows/train/0": "there is no dataset page at /console/datasets/../../etc",
        f"/console/datasets/{version}/rows/train/0/more": "there is no dataset page",
        "/console/datasets/%2E%2E/rows/train/0": "is not a dataset version",
    }
    for path, message in cases.items():
        answer = http.get(path)
        assert answer.status_code == 404, path
        assert message in answer.text.replace("&#39;", "'"), path


def test_a_packed_row_shows_its_branches_and_a_foreign_tokenizer_is_named(
    store: TraceStore, tokenizer: Any, tmp_path: Path
) -> None:
    from tracewheel.inference.testing import TEST_CACHE, smollm2_tokenizer_dir

    shared, first, second = (tokenizer(text)["input_ids"] for text in ("Shared prompt.", " One.", " Two."))
    ids = shared + first + second
    parents = [
        *range(-1, len(shared) + len(first) - 1),
        len(shared) - 1,
        *range(len(shared) + len(first), len(ids) - 1),
    ]
    labels = [-100] * len(shared) + first + second
    folder = tmp_path / "datasets" / "packed"
    folder.mkdir(parents=True)
    table = {"trace_id": ["run-9"], "input_ids": [ids], "labels": [labels], "parents": [parents]}
    pq.write_table(pa.table(table), folder / "train.parquet")
    base_model = str(smollm2_tokenizer_dir(TEST_CACHE))
    write_manifest(folder, Manifest(version="packed", base_model=base_model, tokenizer_sha256="0" * 64))
    app = create_app(store, None, console=ConsoleConfig(artifacts_dir=tmp_path / "datasets"))  # type: ignore[arg-type]
    with TestClient(app) as http:
        page = http.get("/console/datasets/packed/rows/train/0").text
    assert "a packed row (a prefix tree)" in page and "is not the one this build recorded" in page
    assert f"⤷ branch from token {len(shared) - 1}</span>" in page
    assert '<span class="trained" data-start="' in page and "Two." in page and "Shared prompt." in page
