"""The console's reports: the evaluation report folders under the reports directory, and their files.

| path | shows |
|---|---|
| `/console/reports` | every folder with a `report.md` (newest first): the report rendered, its plots shown |
| `/console/reports/{path}` | a file under the reports directory: images as images, the rest as plain text |

`tracewheel eval --report` writes a folder here (`report.md`, `rounds.png`, `result.json`). Only files
inside the reports directory are served: a path with `..`, or a symlink, that leads out of it is
not found, and nothing is served as HTML or SVG.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from markupsafe import Markup

from tracewheel.core.errors import NotFound
from tracewheel.dataset.attachments import IMAGE_TYPES
from tracewheel.dataset.console.context import ConsoleContext
from tracewheel.dataset.console.report_markdown import render_markdown

REPORT_FILE = "report.md"
MAX_REPORT_CHARS = 200_000
"""A longer report.md is shown cut at this length (the file itself is linked whole)."""


def resolve_report_file(root: Path, relative: str) -> Path:
    """The file at `relative` inside `root`.

    Raises:
        NotFound: no such file, or the path (through `..` or a symlink) leads outside `root`.
    """
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise NotFound(f"no report file {relative!r}")
    return target


def file_url(root: Path, path: Path) -> str:
    """The console URL of `path`, a file under `root`."""
    return "/console/reports/" + quote(path.relative_to(root.resolve()).as_posix())


@dataclass(frozen=True)
class ReportFolder:
    """One report folder as the list shows it."""

    name: str
    modified: str
    html: Markup  # report.md rendered, escaped
    images: list[str]  # URLs of the plots report.md does not show itself
    files: list[tuple[str, str]]  # (name, URL) of every file in the folder


def _report(root: Path, folder: Path) -> ReportFolder:
    """The folder's report.md rendered, with its images resolved inside the folder only."""
    shown: set[str] = set()

    def image_url(written: str) -> str | None:
        try:
            target = resolve_report_file(folder, written)
        except NotFound:
            return None
        if target.suffix.lower() not in IMAGE_TYPES:
            return None
        shown.add(target.name)
        return file_url(root, target)

    text = (folder / REPORT_FILE).read_text(encoding="utf-8", errors="replace")[:MAX_REPORT_CHARS]
    html = render_markdown(text, image_url)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [file_url(root, p) for p in files if p.suffix.lower() in IMAGE_TYPES and p.name not in shown]
    modified = datetime.fromtimestamp((folder / REPORT_FILE).stat().st_mtime, UTC).isoformat(timespec="seconds")
    return ReportFolder(folder.name, modified, html, images, [(p.name, file_url(root, p)) for p in files])


def report_folders(root: Path) -> list[ReportFolder]:
    """The folders directly under `root` holding a report.md, newest first; folders being written
    (hidden staging folders) and anything whose path leads outside `root` are left out."""
    if not root.is_dir():
        return []
    base = root.resolve()
    found = []
    for folder in root.iterdir():
        report = folder / REPORT_FILE
        if folder.name.startswith(".") or not folder.resolve().is_relative_to(base) or not report.is_file():
            continue
        if not report.resolve().is_relative_to(base):
            continue
        found.append((report.stat().st_mtime, folder))
    return [_report(root, folder.resolve()) for _, folder in sorted(found, key=lambda item: -item[0])]


def add_routes(app: FastAPI, ctx: ConsoleContext) -> None:
    """Adds the report list and the report files to `app`."""

    @app.get("/console/reports", response_class=HTMLResponse, include_in_schema=False)
    def reports_page(request: Request) -> HTMLResponse:
        root = ctx.reports_dir
        reports = report_folders(root) if root is not None else []
        return ctx.render(request, "console/reports.html", {"reports": reports, "reports_dir": root})

    @app.get("/console/reports/{path:path}", include_in_schema=False)
    def report_file(path: str) -> Response:
        if ctx.reports_dir is None:
            raise NotFound("no reports directory is configured (TW_DATASET_REPORTS_DIR)")
        target = resolve_report_file(ctx.reports_dir, path)
        media_type = IMAGE_TYPES.get(target.suffix.lower(), "text/plain; charset=utf-8")
        headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}
        return FileResponse(target, media_type=media_type, headers=headers)
