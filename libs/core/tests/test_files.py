"""Atomic writes: the new content in place, parents made, no staging file left, the old file kept on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracewheel.core.files import staging_dir, write_json_atomically, write_text_atomically


def test_writes_then_replaces_leaving_no_staging_file(tmp_path: Path) -> None:
    target = tmp_path / "state" / "jobs.json"

    write_json_atomically(target, [{"id": "a"}])
    write_json_atomically(target, {"agent": "agent-2"})

    assert json.loads(target.read_text(encoding="utf-8")) == {"agent": "agent-2"}
    assert [path.name for path in target.parent.iterdir()] == ["jobs.json"]


def test_indent_is_the_callers(tmp_path: Path) -> None:
    target = tmp_path / "state.json"

    write_json_atomically(target, {"a": 1}, indent=2)

    assert target.read_text(encoding="utf-8") == '{\n  "a": 1\n}'


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "jobs.json"
    write_json_atomically(target, {"old": True})

    with pytest.raises(TypeError):
        write_json_atomically(target, {"new": object()})  # fails while serialising
    with pytest.raises(UnicodeEncodeError):
        write_text_atomically(target, "half \ud800")  # fails while encoding, after the file is opened

    assert json.loads(target.read_text(encoding="utf-8")) == {"old": True}
    assert [path.name for path in tmp_path.iterdir()] == ["jobs.json"]


def test_staging_dir_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "models" / "tiny"
    with pytest.raises(RuntimeError), staging_dir(target) as staging:
        (staging / "weights").write_text("half")
        raise RuntimeError("killed mid-save")
    assert list(target.parent.iterdir()) == []

    with staging_dir(target) as staging:
        (staging / "weights").write_text("whole")

    assert (target / "weights").read_text() == "whole"
    assert [path.name for path in target.parent.iterdir()] == ["tiny"]


def test_staging_dir_lands_readable_by_others(tmp_path: Path) -> None:
    with staging_dir(tmp_path / "out") as staging:
        (staging / "a").write_text("x")
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
