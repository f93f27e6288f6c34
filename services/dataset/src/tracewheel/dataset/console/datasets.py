"""The console's dataset pages: every build, one build's manifest and rows, one row as trained.

| path | shows |
|---|---|
| `/console/datasets` | every build (the store's record, its folder's manifest): rows, tokens, dropped |
| `/console/datasets/{version}` | the manifest in full, the traces it came from, each split's rows (paged) |
| `/console/datasets/{version}/rows/{split}/{index}` | the row's tokens as trained: trained runs against the context |

The builds the store recorded are listed with the folders under the artifacts directory that it
did not (made by hand, or by another replica); a folder whose manifest does not parse says why.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from tracewheel.core.chat import template_label
from tracewheel.core.dataset_layout import ASSISTANT_MASKS, INPUT_IDS, PARENTS, SPLITS, Manifest, ManifestError
from tracewheel.core.dataset_layout import read_manifest as read_folder_manifest
from tracewheel.core.errors import FailedPrecondition, NotFound
from tracewheel.dataset.console.context import ConsoleContext
from tracewheel.dataset.console.dataset_files import (
    StoredRow,
    build_folder,
    check_split,
    folder_versions,
    read_row,
    row_summaries,
    split_size,
    trained_flags,
)
from tracewheel.dataset.console.token_view import TokenizerCache, decode_runs, token_runs
from tracewheel.dataset.records import BuildRecord

PAGE_SIZE = 50


@functools.lru_cache(maxsize=64)
def _template(sha256: str) -> str:
    return template_label(sha256) if sha256 else "not recorded"


@dataclass(frozen=True)
class BuildSummary:
    """A line of the list: the manifest's figures where the folder has one, else the store's."""

    version: str
    built_at: datetime | None
    base_model: str
    template: str
    train_rows: int
    eval_rows: int
    tokens: int | None
    trained_tokens: int
    dropped: int | None
    recorded: bool
    problem: str = ""


def _summary(version: str, record: BuildRecord | None, manifest: Manifest | None, problem: str) -> BuildSummary:
    if manifest is not None:
        return BuildSummary(
            version,
            manifest.built_at or (record.built_at if record else None),
            manifest.base_model,
            _template(manifest.template_sha256),
            manifest.rows.train,
            manifest.rows.eval,
            manifest.tokens.total,
            manifest.tokens.supervised,
            len(manifest.dropped),
            record is not None,
        )
    return BuildSummary(
        version,
        record.built_at if record else None,
        record.base_model if record else "",
        _template(record.template_sha256) if record else "",
        record.train_rows if record else 0,
        record.eval_rows if record else 0,
        None,
        record.supervised_tokens if record else 0,
        None,
        record is not None,
        problem,
    )


def _manifest(artifacts_dir: Path | None, version: str) -> tuple[Manifest | None, str]:
    """The version's manifest, or None and why not."""
    try:
        return read_folder_manifest(build_folder(artifacts_dir, version)), ""
    except (NotFound, ManifestError) as exc:
        return None, str(exc)


def build_summaries(ctx: ConsoleContext) -> list[BuildSummary]:
    """The store's builds, newest first, then the folders it did not record."""
    records = {record.version: record for record in ctx.store.list_builds(with_traces=False)}
    versions = [*records, *(v for v in reversed(folder_versions(ctx.artifacts_dir)) if v not in records)]
    return [_summary(v, records.get(v), *_manifest(ctx.artifacts_dir, v)) for v in versions]


def _split_page(folder: Path, split: str, start: int) -> dict[str, Any]:
    size = split_size(folder, split)
    start = max(0, min(start, max(size - 1, 0)))
    return {
        "name": split,
        "size": size,
        "start": start,
        "rows": row_summaries(folder, split, start, PAGE_SIZE),
        "previous": max(start - PAGE_SIZE, 0) if start else None,
        "next": start + PAGE_SIZE if start + PAGE_SIZE < size else None,
    }


def manifest_context(ctx: ConsoleContext, version: str, starts: dict[str, int]) -> dict[str, Any]:
    """The manifest page: the folder's manifest (or why it cannot be read) and each split's page.

    Raises:
        NotFound: neither the store nor the artifacts directory knows the version.
    """
    try:
        record: BuildRecord | None = ctx.store.get_build(version)
    except NotFound:
        record = None
    try:
        folder = build_folder(ctx.artifacts_dir, version)
    except NotFound:
        if record is None:
            raise
        return {"version": version, "record": record, "problem": f"the folder {record.path} is not on this host"}
    try:
        manifest: Manifest | None = read_folder_manifest(folder)
        problem = ""
    except ManifestError as exc:
        manifest, problem = None, str(exc)
    return {
        "version": version,
        "record": record,
        "manifest": manifest,
        "problem": problem,
        "template": _template(manifest.template_sha256) if manifest else "",
        "splits": [_split_page(folder, split, starts.get(split, 0)) for split in SPLITS],
    }


def _decoded(tokens: TokenizerCache, manifest: Manifest | None, row: StoredRow) -> dict[str, Any]:
    """The row's runs, decoded with the build's tokenizer where it loads, and notes on what is not shown."""
    notes: list[str] = []
    trained = trained_flags(row.columns)
    if ASSISTANT_MASKS in row.columns and [bool(b) for b in row.columns[ASSISTANT_MASKS]] != trained:
        notes.append("the labels and the assistant mask disagree: highlighted is what the labels train")
    parents = row.columns.get(PARENTS)
    if parents is not None and parents != list(range(-1, len(trained) - 1)):
        notes.append(
            "a packed row (a prefix tree): its branches follow one another below; each one continues"
            " from the token named at its start, and attends only to its own path"
        )
    else:
        parents = None
    tokenizer = None
    try:
        loaded = tokens.get(manifest.base_model if manifest else "")
        tokenizer = loaded.tokenizer
        if manifest and manifest.tokenizer_sha256 and manifest.tokenizer_sha256 != loaded.sha256:
            notes.append(
                f"the tokenizer in {manifest.base_model} is not the one this build recorded: text may be wrong"
            )
    except FailedPrecondition as exc:
        notes.append(f"{exc}: the token ids are shown instead of text")
    runs = decode_runs(tokenizer, row.columns[INPUT_IDS], token_runs(trained, parents))
    return {"runs": runs, "notes": notes, "tokens": len(trained), "trained": sum(trained)}


def row_context(ctx: ConsoleContext, tokens: TokenizerCache, version: str, split: str, index: str) -> dict[str, Any]:
    """The row page: the row, its runs (or its JSONL line), counts and neighbours.

    Raises:
        NotFound: no such version, split or row.
    """
    check_split(split)
    folder = build_folder(ctx.artifacts_dir, version)
    if not index.isdigit():
        raise NotFound(f"{index!r} is not a row number")
    row = read_row(folder, split, int(index))
    manifest, problem = _manifest(ctx.artifacts_dir, version)
    context: dict[str, Any] = {
        "version": version,
        "split": split,
        "row": row,
        "problem": problem,
        "previous": row.index - 1 if row.index else None,
        "next": row.index + 1 if row.index + 1 < row.size else None,
    }
    if INPUT_IDS in row.columns:
        context.update(_decoded(tokens, manifest, row))
    return context


def add_routes(app: FastAPI, ctx: ConsoleContext) -> None:
    """Adds the dataset pages (see the module docstring)."""
    tokens = TokenizerCache()

    def missing(request: Request, exc: NotFound) -> HTMLResponse:
        return ctx.render(request, "console/dataset_missing.html", {"message": str(exc)}, 404)

    @app.get("/console/datasets", response_class=HTMLResponse, include_in_schema=False)
    def datasets_page(request: Request) -> HTMLResponse:
        context = {"builds": build_summaries(ctx), "artifacts_dir": ctx.artifacts_dir}
        return ctx.render(request, "console/datasets.html", context)

    @app.get("/console/datasets/{version}", response_class=HTMLResponse, include_in_schema=False)
    def dataset_page(request: Request, version: str, train_from: int = 0, eval_from: int = 0) -> HTMLResponse:
        try:
            context = manifest_context(ctx, version, {"train": train_from, "eval": eval_from})
        except NotFound as exc:
            return missing(request, exc)
        return ctx.render(request, "console/dataset.html", context)

    @app.get("/console/datasets/{version}/rows/{split}/{index}", response_class=HTMLResponse, include_in_schema=False)
    def dataset_row_page(request: Request, version: str, split: str, index: str) -> HTMLResponse:
        try:
            context = row_context(ctx, tokens, version, split, index)
        except NotFound as exc:
            return missing(request, exc)
        return ctx.render(request, "console/dataset_row.html", context)

    @app.get("/console/datasets/{rest:path}", response_class=HTMLResponse, include_in_schema=False)
    def no_dataset_page(request: Request, rest: str) -> HTMLResponse:
        # reached with separators in a version (`..%2F`): named here rather than as a bare "Not Found"
        message = (
            f"there is no dataset page at /console/datasets/{rest}: a version is a folder name"
            " (ds-20261101-100000-ab12cd34) and a row is .../rows/train/N or .../rows/eval/N"
        )
        return missing(request, NotFound(message))
