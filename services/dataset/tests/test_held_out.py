"""Held-out tasks never feed a build: their runs are rejected on ingest, whatever the verdict, and a
person cannot approve one; the build holds the train split's runs only."""

from __future__ import annotations

import pytest

from tracewheel.core.errors import FailedPrecondition
from tracewheel.dataset.curation import CurationStatus


def test_runs_of_held_out_tasks_are_rejected_and_never_built(store, make_trace, make_builder) -> None:
    train = make_trace("run-train", suite="team", task_id="a")
    held_out = make_trace("run-heldout", suite="team", task_id="b")
    train["task"]["split"], held_out["task"]["split"] = "train", "heldout"

    kept, refused = store.ingest(train), store.ingest(held_out)  # both verified passes

    assert kept.status == CurationStatus.APPROVED
    assert refused.status == CurationStatus.REJECTED and "held-out" in refused.tags
    assert refused.reason == "a run of held-out task team/b: held-out tasks never feed a build"
    with pytest.raises(FailedPrecondition, match="cannot be approved"):
        store.set_status("run-heldout", CurationStatus.APPROVED)
    assert store.get("run-heldout").status == CurationStatus.REJECTED
    build = make_builder().build()
    assert list(build.record.trace_revisions) == ["run-train"]
