"""Dataset builds: approved traces -> unrolled, rendered, masked, split rows -> a versioned directory.

A build takes every approved trace at its current revision, unrolls it (at user turns, or per
turn as served for a trace run with an observation window, packed as a prefix tree), drops
duplicate rows, splits by trace id, renders each row with the training chat template and masks
exactly its target assistant turns (`render.render_row`'s rows, made in batches by
`render_batch.render_rows`, checked per row), drops rows over `max_length` (reported in the
manifest), writes the directory atomically and only then records the build in the store. The
same selection is never built twice (`store.find_build`).
"""

from __future__ import annotations

import gc
import logging
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from tracewheel.core.base_model import default_max_length, tokenizer_sha256
from tracewheel.core.chat import TEMPLATE_NAMES, resolve_chat_format, template_sha256
from tracewheel.core.dataset_layout import SPLITS, DroppedRow, Manifest, ManifestTrace, SplitCounts, TokenCounts
from tracewheel.core.errors import ConfigError, FailedPrecondition
from tracewheel.core.trace import Trace
from tracewheel.dataset.artifacts import EncodedRow, write_dataset_dir
from tracewheel.dataset.build_options import BuildOptions
from tracewheel.dataset.pack import pack_prefix_tree
from tracewheel.dataset.records import BuildRecord
from tracewheel.dataset.render import ChatDicts
from tracewheel.dataset.render_batch import render_rows
from tracewheel.dataset.split import split_of, split_rows
from tracewheel.dataset.store import TraceStore
from tracewheel.dataset.store_schema import selection_sha256
from tracewheel.dataset.unroll import TrainingRow, unroll, without_reasoning

logger = logging.getLogger(__name__)


class BuildConfig(BuildOptions):
    """What a build depends on besides the traces: the options, the base model and its template.

    `max_length` left out (or None) is the base model's (`core.base_model.default_max_length`).
    """

    base_model: str
    chat_template: str
    """The training template's Jinja source (with `{% generation %}` markers); "" while no base
    model is set (a build is then refused)."""
    max_length: int = Field(ge=16, description="Rows longer than this many tokens are dropped.")

    @model_validator(mode="before")
    @classmethod
    def _base_models_length(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("max_length") is None:
            return {**data, "max_length": default_max_length(data.get("base_model") or "")}
        return data

    @property
    def template_sha256(self) -> str:
        return template_sha256(self.chat_template)


@dataclass
class BuildResult:
    """A build's record; `created` is False when this exact selection had been built before."""

    record: BuildRecord
    created: bool
    dropped: list[DroppedRow] = field(default_factory=list)


def load_chat_template(spec: str, base_model: str = "") -> str:
    """The training template: `spec` (a shipped name or a .jinja path), else the base model family's.

    Raises:
        ConfigError: `spec` names no template, or it is empty and the base model is in no known family.
        ChatTemplateError: the template has no `{% generation %}` markers.
    """
    setting = "TW_DATASET_CHAT_TEMPLATE"
    template = resolve_chat_format(base_model, training=spec, setting=setting).training_template
    if template is None:
        raise ConfigError(
            f"no training template is known for base model {base_model!r}; set {setting} to one of"
            f" {', '.join(TEMPLATE_NAMES)} or a .jinja file with {{% generation %}} markers"
        )
    return template


def dataset_version(built_at: datetime, selection: str) -> str:
    """Sortable by time: `ds-YYYYmmdd-HHMMSS-<first 8 of the selection hash>`."""
    return f"ds-{built_at.astimezone(UTC):%Y%m%d-%H%M%S}-{selection[:8]}"


def packing_groups(rows: list[TrainingRow]) -> list[list[TrainingRow]]:
    """Consecutive per-turn rows of one windowed trace together (one packed row each); every
    other row alone."""
    groups: list[list[TrainingRow]] = []
    for row in rows:
        last = groups[-1][-1] if groups else None
        if row.window and last is not None and last.window and last.trace_id == row.trace_id:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def packed_row(group: list[TrainingRow]) -> TrainingRow:
    """What a packed group trains, as one row: its last prompt as served and every group's target."""
    last = group[-1]
    return last.model_copy(update={"targets": [target for row in group for target in row.targets]})


def encode_rows(
    tokenizer: Any, config: BuildConfig, rows: list[TrainingRow]
) -> tuple[list[EncodedRow], list[DroppedRow]]:
    """Renders rows (a windowed trace's per-turn rows packed as one prefix tree, pack.py); rows
    longer than `max_length` tokens are dropped and reported.

    Raises:
        RenderError: a row's mask does not match its assistant turns (names the trace).
    """
    kept: list[EncodedRow] = []
    dropped: list[DroppedRow] = []
    chat = ChatDicts()
    every = iter(render_rows(tokenizer, config.chat_template, rows, chat))  # in row order, as the groups are
    for group in packing_groups(rows):
        rendered = [next(every) for _ in group]
        if group[0].window:
            row, tree = packed_row(group), pack_prefix_tree(rendered, group[0].trace_id)
        else:
            row, tree = group[0], rendered[0]
        encoded = EncodedRow(row, tree, messages_json=chat.messages_json(row), tools_json=chat.tools_json(row))
        tokens = len(encoded.rendered.input_ids)
        if tokens > config.max_length:
            reason = f"{tokens} tokens > max_length {config.max_length}"
            dropped.append(
                DroppedRow(trace_id=encoded.row.trace_id, targets=encoded.row.targets, tokens=tokens, reason=reason)
            )
            continue
        kept.append(encoded)
    return kept, dropped


def build_manifest(
    version: str,
    built_at: datetime,
    config: BuildConfig,
    revisions: dict[str, int],
    splits: dict[str, list[EncodedRow]],
    dropped: list[DroppedRow],
    duplicates_removed: int,
    tokenizer_hash: str = "",
) -> Manifest:
    """The manifest.json of a build: inputs, settings, counts, and what was left out and why."""
    every = [encoded for name in SPLITS for encoded in splits[name]]
    tool_calls: Counter[str] = Counter()
    for encoded in every:
        for index in encoded.row.targets:
            tool_calls.update(call.function.name for call in encoded.row.messages[index].tool_calls)
    return Manifest(
        version=version,
        built_at=built_at,
        selection_sha256=selection_sha256(revisions),
        base_model=config.base_model,
        template_sha256=config.template_sha256,
        tokenizer_sha256=tokenizer_hash,
        max_length=config.max_length,
        eval_ratio=config.eval_ratio,
        split_seed=config.split_seed,
        reasoning=config.reasoning,
        traces=[
            ManifestTrace(
                id=trace_id, revision=revision, split=split_of(trace_id, config.eval_ratio, config.split_seed)
            )
            for trace_id, revision in sorted(revisions.items())
        ],
        rows=SplitCounts(train=len(splits["train"]), eval=len(splits["eval"])),
        tokens=TokenCounts(
            total=sum(len(e.rendered.input_ids) for e in every),
            supervised=sum(e.rendered.supervised_tokens for e in every),
        ),
        tool_calls=dict(sorted(tool_calls.items())),
        duplicates_removed=duplicates_removed,
        dropped=dropped,
    )


class DatasetBuilder:
    """Builds datasets from a store's approved traces into `artifacts_dir`."""

    def __init__(self, store: TraceStore, tokenizer: Any, config: BuildConfig, artifacts_dir: Path) -> None:
        self.store = store
        self.tokenizer = tokenizer
        self.config = config
        self.artifacts_dir = artifacts_dir

    def _encode(self, revisions: dict[str, int]) -> tuple[dict[str, list[EncodedRow]], list[DroppedRow], int]:
        """Unrolled, deduplicated, split and rendered rows, the rows dropped, and the duplicates removed.

        Raises:
            FailedPrecondition: no row is left.
            RenderError: a row's mask failed its check.
        """
        traces = sorted(self.store.traces_at(revisions), key=row_order)
        rows = [row for trace in traces for row in unroll(trace)]
        split = split_rows(
            rows if self.config.reasoning else [without_reasoning(row) for row in rows],
            self.config.eval_ratio,
            self.config.split_seed,
        )
        splits: dict[str, list[EncodedRow]] = {}
        dropped: list[DroppedRow] = []
        for name in SPLITS:
            splits[name], dropped_here = encode_rows(self.tokenizer, self.config, getattr(split, name))
            dropped += dropped_here
        if not splits["train"] and not splits["eval"]:
            raise FailedPrecondition(
                f"no rows left to build: {len(dropped)} rows of {len(revisions)} approved traces were dropped"
                f" ({dropped[0].reason if dropped else 'no answered user query'});"
                " raise max_length or approve other traces"
            )
        return splits, dropped, split.duplicates_removed

    def build(self, built_at: datetime | None = None) -> BuildResult:
        """Builds every approved trace (current revisions), unless this exact set was built already.
        Builds take turns under the store's build lock, so replicas sharing a store that are
        triggered by the same traces build them once (the second finds the selection built).

        Raises:
            FailedPrecondition: no approved traces, or no row left after dropping over-length ones.
            RenderError: a row's loss mask failed its check (names the trace); nothing is written.
        """
        if not self.config.chat_template:
            raise FailedPrecondition("no base model to build for; set TW_DATASET_BASE_MODEL to its directory")
        with self.store.build_lock():
            return self._build_now(built_at)

    def _build_now(self, built_at: datetime | None) -> BuildResult:
        revisions = self.store.approved_revisions()
        if not revisions:
            raise FailedPrecondition("no approved traces to build from; approve traces (curate) first")
        existing = self.store.find_build(revisions)
        if existing is not None:
            logger.info("approved set already built as %s; not building again", existing.version)
            return BuildResult(record=existing, created=False)
        with collector_paused():
            splits, dropped, duplicates = self._encode(revisions)
            built_at = built_at or datetime.now(UTC)
            version = dataset_version(built_at, selection_sha256(revisions))
            manifest = build_manifest(
                version, built_at, self.config, revisions, splits, dropped, duplicates, tokenizer_sha256(self.tokenizer)
            )
            path = write_dataset_dir(self.artifacts_dir, version, splits, manifest)
        try:
            record = self.store.record_build(
                version,
                revisions,
                path=str(path),
                base_model=self.config.base_model,
                template_sha256=self.config.template_sha256,
                train_rows=len(splits["train"]),
                eval_rows=len(splits["eval"]),
                supervised_tokens=manifest.tokens.supervised,
                built_at=built_at,
            )
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # an unrecorded directory would be an orphan
            raise
        logger.info(
            "built %s: %d train and %d eval rows, %d dropped",
            version,
            manifest.rows.train,
            manifest.rows.eval,
            len(dropped),
        )
        return BuildResult(record=record, created=True, dropped=dropped)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (reference counting still frees).

    A build allocates millions of objects (parsed traces, token lists) that each full collection
    walks again; without it a 10,000-trace build takes ~15 % less time at the same peak memory.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def row_order(trace: Trace) -> tuple[str, str, str]:
    """Where a trace's rows go in a build: by suite and task, then by id.

    Trace ids are random, and concurrent agents publish in any order; ordered by task, the same
    suite run builds the same rows in the same order, and the trainer's seeded shuffle then
    trains the same adapter. (Ordered by id, two demo runs on the same ten demonstrations
    trained different adapters: 30 % and 0 % held-out success.)
    """
    task = trace.task
    return (task.suite, task.task_id, trace.id) if task is not None else ("", "", trace.id)


def check_threshold(store: TraceStore, threshold: int) -> int:
    """How many approved traces are new since the last build.

    Raises:
        FailedPrecondition: fewer than `threshold` (a forced build skips this check).
    """
    waiting = len(store.approved_since_last_build())
    if waiting < threshold:
        raise FailedPrecondition(
            f"{waiting} approved traces since the last build, fewer than the threshold {threshold};"
            " approve more or force the build"
        )
    return waiting
