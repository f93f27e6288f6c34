"""Results as the model reads them: joining, attachments, truncation, errors, MCP content."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from mcp import types as mcp_types

from tracewheel.gateway.results import (
    EMPTY_RESULT,
    BlobPart,
    ResultRenderer,
    TextPart,
    result_from_mcp,
    safe_filename,
    truncate,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 10


def test_text_parts_are_joined(tmp_path: Path) -> None:
    result = ResultRenderer(tmp_path).render([TextPart("one"), TextPart(""), TextPart("two")])

    assert result.text == "one\ntwo"
    assert not result.is_error


@pytest.mark.parametrize("parts", [[], [TextPart("")], [TextPart("  \n")]])
def test_empty_result_says_so(tmp_path: Path, parts: list[TextPart]) -> None:
    assert ResultRenderer(tmp_path).render(parts).text == EMPTY_RESULT


def test_truncation_marker_counts_what_was_dropped() -> None:
    assert truncate("abcdefghij", 4) == "abcd\n[... truncated 6 characters ...]"
    assert truncate("abcd", 4) == "abcd"
    assert truncate("abcdefghij", 0) == "abcdefghij"


def test_renderer_truncates_to_its_limit(tmp_path: Path) -> None:
    result = ResultRenderer(tmp_path, max_chars=100).render([TextPart("x" * 250)])

    assert result.text == "x" * 100 + "\n[... truncated 150 characters ...]"


def test_images_become_files_named_in_the_text(tmp_path: Path) -> None:
    result = ResultRenderer(tmp_path).render([TextPart("shot"), BlobPart(PNG, "image/png")], namespace="s1")

    (attachment,) = result.attachments
    assert attachment.path.parent == (tmp_path / "s1").resolve()
    assert attachment.path.suffix == ".png"
    assert attachment.path.read_bytes() == PNG
    assert result.text == f"shot\n[image saved to {attachment.path} (image/png, {len(PNG)} bytes)]"


def test_requested_filenames_stay_inside_the_directory(tmp_path: Path) -> None:
    renderer = ResultRenderer(tmp_path)

    first = renderer.render([BlobPart(PNG, "image/png", "../../etc/evil name.png")], namespace="../up")
    second = renderer.render([BlobPart(PNG, "image/png", "../../etc/evil name.png")], namespace="../up")

    assert first.attachments[0].path == (tmp_path / "up" / "evil_name.png").resolve()
    assert second.attachments[0].path.name == "evil_name-2.png"


@pytest.mark.parametrize(
    ("name", "mime", "expected"),
    [("shot", "image/jpeg", "shot.jpeg"), ("a.png", "image/jpeg", "a.jpeg"), ("..", "image/png", "file.png")],
)
def test_safe_filename(name: str, mime: str, expected: str) -> None:
    assert safe_filename(name, mime) == expected


def test_errors_are_flagged_and_headed(tmp_path: Path) -> None:
    result = ResultRenderer(tmp_path).error("Ref e9 not found.")

    assert result.is_error
    assert result.text == "### Error\nRef e9 not found."


def test_an_error_that_opens_with_the_heading_keeps_one(tmp_path: Path) -> None:
    already = mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text="### Error\nno")], is_error=True
    )

    assert result_from_mcp(already, ResultRenderer(tmp_path)).text == "### Error\nno"


def test_mcp_results_convert(tmp_path: Path) -> None:
    result = mcp_types.CallToolResult(
        content=[
            mcp_types.TextContent(type="text", text="hello"),
            mcp_types.ImageContent(type="image", data=base64.b64encode(PNG).decode(), mime_type="image/png"),
            mcp_types.EmbeddedResource(
                type="resource",
                resource=mcp_types.TextResourceContents(uri="file:///notes.txt", text="notes"),
            ),
            mcp_types.ResourceLink(type="resource_link", name="report", uri="file:///report.pdf"),
        ],
        is_error=True,
    )

    rendered = result_from_mcp(result, ResultRenderer(tmp_path), namespace="ext")

    assert rendered.is_error
    assert rendered.text.startswith("### Error\nhello\n[image saved to ")
    assert "[resource file:///notes.txt]\nnotes" in rendered.text
    assert rendered.text.endswith("[resource link: report file:///report.pdf]")
    assert rendered.attachments[0].path.read_bytes() == PNG
