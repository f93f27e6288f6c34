"""write_json_atomically: the new content in place, parents made, no staging file left."""

from __future__ import annotations

import json
from pathlib import Path

from tracewheel.core.files import write_json_atomically


def test_writes_then_replaces_leaving_no_staging_file(tmp_path: Path) -> None:
    target = tmp_path / "state" / "jobs.json"

    write_json_atomically(target, [{"id": "a"}])
    write_json_atomically(target, {"agent": "agent-2"})

    assert json.loads(target.read_text(encoding="utf-8")) == {"agent": "agent-2"}
    assert [path.name for path in target.parent.iterdir()] == ["jobs.json"]
