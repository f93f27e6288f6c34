"""Report folders: listed newest first, markdown rendered escaped, files served from inside the folder only."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tracewheel.core.errors import NotFound
from tracewheel.dataset.console import ConsoleConfig
from tracewheel.dataset.console.report_markdown import render_markdown
from tracewheel.dataset.console.reports import report_folders, resolve_report_file
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)
HOSTILE = "<script>alert(1)</script>"


def _report(folder: Path, text: str, mtime: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "report.md").write_text(text)
    (folder / "rounds.png").write_bytes(PNG)
    os.utime(folder / "report.md", (mtime, mtime))
    return folder


def test_markdown_is_rendered_escaped_with_tables_lists_and_images_beside_it() -> None:
    text = (
        f"# Eval of `{HOSTILE}`\n\nSome <b>text</b>\n\n| model | detail |\n|---|---|\n| m | a \\| b {HOSTILE} |\n\n"
        "- one\n- two `x`\n\n![rounds](rounds.png)\n![out](../secret.png)\n<img src=x onerror=alert(1)>\n"
    )
    html = str(render_markdown(text, lambda written: "/r/rounds.png" if written == "rounds.png" else None))
    assert "<h2>Eval of <code>&lt;script&gt;alert(1)&lt;/script&gt;</code></h2>" in html
    assert "<p>Some &lt;b&gt;text&lt;/b&gt;</p>" in html
    assert '<th scope="col">model</th>' in html and "<td>a | b &lt;script&gt;" in html
    assert "<ul><li>one</li><li>two <code>x</code></li></ul>" in html
    assert '<img src="/r/rounds.png" alt="rounds">' in html
    assert "<p>![out](../secret.png)</p>" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html and "<img src=x" not in html


def test_folders_are_listed_newest_first_and_paths_stay_inside(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    _report(root / "old", "# old\n", 1_000)
    _report(root / "new", "# new\n\n![rounds](rounds.png)\n", 2_000)
    (root / ".staging-x").mkdir()
    (root / ".staging-x" / "report.md").write_text("# half written")
    (root / "empty").mkdir()
    outside = _report(tmp_path / "elsewhere", "# outside\n", 3_000)
    (root / "linked-out").symlink_to(outside)
    (root / "new" / "leak.md").symlink_to(outside / "report.md")

    listed = report_folders(root)

    assert [r.name for r in listed] == ["new", "old"]
    assert listed[0].images == [] and listed[1].images == ["/console/reports/old/rounds.png"]
    assert ("rounds.png", "/console/reports/new/rounds.png") in listed[0].files
    assert resolve_report_file(root, "new/rounds.png") == (root / "new" / "rounds.png").resolve()
    for escaping in ("../elsewhere/report.md", "linked-out/report.md", "new/leak.md", "new", "", "/etc/passwd"):
        with pytest.raises(NotFound):
            resolve_report_file(root, escaping)


async def test_files_are_served_with_their_type_and_nosniff(store: TraceStore, tmp_path: Path) -> None:
    root = tmp_path / "reports"
    _report(root / "run", f"# run {HOSTILE}\n", 1_000)
    (root / "run" / "page.html").write_text(HOSTILE)
    (root / "secret.txt").symlink_to(tmp_path / "traces.db")
    app = create_app(store, None, console=ConsoleConfig(reports_dir=root))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        image = await client.get("/console/reports/run/rounds.png")
        page = await client.get("/console/reports/run/page.html")
        escaping = [await client.get(f"/console/reports/{p}") for p in ("run/../../traces.db", "secret.txt")]
        listing = await client.get("/console/reports")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png" and image.content == PNG
    assert page.headers["content-type"] == "text/plain; charset=utf-8" and page.text == HOSTILE
    assert page.headers["x-content-type-options"] == "nosniff"
    assert [r.status_code for r in escaping] == [404, 404]
    assert listing.status_code == 200 and HOSTILE not in listing.text
    assert "run &lt;script&gt;alert(1)&lt;/script&gt;" in listing.text
    assert 'src="/console/reports/run/rounds.png"' in listing.text
