"""Which rows an adapter was trained on, and what a warm start on new rows trains (trained_rows.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset

from tracewheel.trainer.data import DatasetError
from tracewheel.trainer.trained_rows import (
    TRAINED_ROWS,
    read_trained_rows,
    row_key,
    row_keys,
    warm_start_rows,
    write_trained_rows,
)


def rows(n: int, start: int = 0) -> Dataset:
    return Dataset.from_list([{"input_ids": [1, 2, i], "labels": [-100, 2, i]} for i in range(start, start + n)])


def test_a_rows_key_is_its_content_not_its_position() -> None:
    split = rows(3)
    assert row_keys(split) == row_keys(rows(3))
    assert len(set(row_keys(split))) == 3
    assert row_key({"input_ids": [1, 2], "labels": [-100, 2]}) != row_key({"input_ids": [1, 2], "labels": [1, 2]})
    # the columns' order does not matter, the labels do
    assert row_key({"a": 1, "b": [2]}) == row_key({"b": [2], "a": 1})


def test_the_record_round_trips_and_a_bad_one_reads_as_unknown(tmp_path: Path) -> None:
    write_trained_rows(tmp_path, ["b", "a", "a"])
    assert json.loads((tmp_path / TRAINED_ROWS).read_text()) == {"rows": ["a", "b"]}
    assert read_trained_rows(tmp_path) == {"a", "b"}
    assert read_trained_rows(tmp_path / "missing") is None
    (tmp_path / TRAINED_ROWS).write_text("{not json")
    assert read_trained_rows(tmp_path) is None
    (tmp_path / TRAINED_ROWS).write_text(json.dumps({"rows": [1, 2]}))
    assert read_trained_rows(tmp_path) is None


def test_a_warm_start_trains_the_new_rows_and_a_seeded_sample_of_the_seen_ones() -> None:
    old, new = rows(6), rows(2, start=6)
    keys = row_keys(Dataset.from_list(list(old) + list(new)))
    seen = set(row_keys(old))

    def chosen(replay: int, seed: int = 1) -> list[str]:
        return [keys[index] for index in warm_start_rows(keys, seen, replay=replay, seed=seed, where="ds")]

    assert chosen(0) == row_keys(new)

    with_replay = chosen(3)
    assert len(with_replay) == 5 and set(row_keys(new)) <= set(with_replay) and len(set(with_replay) & seen) == 3
    assert with_replay == chosen(3)  # seeded
    assert with_replay == [k for k in keys if k in with_replay]  # in the dataset's order

    assert len(chosen(100)) == 8  # at most every seen row


def test_unknown_rows_train_everything_and_nothing_new_is_refused() -> None:
    keys = row_keys(rows(4))
    assert warm_start_rows(keys, None, replay=0, seed=0, where="ds") == [0, 1, 2, 3]
    with pytest.raises(DatasetError, match="all 4 rows were already trained into the init adapter"):
        warm_start_rows(keys, set(keys), replay=2, seed=0, where="ds")
