"""The dataset folder's manifest: a round trip, and clear errors for a missing or wrong one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracewheel.core.dataset_layout import (
    MANIFEST_FILE,
    DroppedRow,
    Manifest,
    ManifestError,
    ManifestTrace,
    SplitCounts,
    TokenCounts,
    read_manifest,
    write_manifest,
)

BUILT = Manifest(
    version="ds-20261121-171500-1a2b3c4d",
    built_at=datetime(2026, 11, 21, 17, 15, tzinfo=UTC),
    selection_sha256="ab" * 32,
    base_model="tiny-qwen3",
    template_sha256="cd" * 32,
    max_length=8192,
    eval_ratio=0.1,
    split_seed="",
    reasoning=False,
    traces=[ManifestTrace(id="t1", revision=2, split="train")],
    rows=SplitCounts(train=3, eval=1),
    tokens=TokenCounts(total=900, supervised=120),
    tool_calls={"browser_navigate": 2},
    duplicates_removed=1,
    dropped=[DroppedRow(trace_id="long", targets=[2], tokens=9000, reason="9000 tokens > max_length 8192")],
)


def test_round_trip_keeps_every_field_and_the_json_shape(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, BUILT)

    assert read_manifest(tmp_path) == BUILT
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text.endswith("}\n") and text.startswith('{\n  "version"')
    assert data["built_at"] == "2026-11-21T17:15:00+00:00"
    assert data["rows"] == {"train": 3, "eval": 1} and data["tokens"] == {"total": 900, "supervised": 120}
    assert data["traces"] == [{"id": "t1", "revision": 2, "split": "train"}]
    assert list(data) == list(Manifest.model_fields)


def test_a_hand_made_manifest_may_leave_fields_out(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"version": "ds-1"}))

    manifest = read_manifest(tmp_path)

    assert (manifest.version, manifest.base_model, manifest.template_sha256) == ("ds-1", "", "")
    assert manifest.rows == SplitCounts(train=0, eval=0) and manifest.built_at is None
    assert read_manifest(write_manifest(tmp_path, manifest).parent) == manifest


def test_missing_manifest_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=f"{MANIFEST_FILE} is missing; is {tmp_path} a built dataset"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object, not list"),
        ('{"version": 3}', "version: Input should be a valid string"),
        ('{"version": "ds-1", "base_model": "m", "train_rows": 3}', "train_rows: Extra inputs are not permitted"),
        ('{"version": "ds-1", "base_model": "m", "rows": {"train": "x"}}', "rows.train: Input should be a valid"),
    ],
)
def test_malformed_manifest_is_a_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / MANIFEST_FILE).write_text(text)

    with pytest.raises(ManifestError, match=problem) as raised:
        read_manifest(tmp_path)

    assert str(tmp_path / MANIFEST_FILE) in str(raised.value)
