"""The reports' markdown as HTML, with every piece of text escaped: a renderer for what reports hold.

Reports are written by `tracewheel eval --report` and the demo: headings, pipe tables, bullet lists,
paragraphs, inline `code` and images of files beside the report. That is all this renders; anything
else (raw HTML included) is shown as the text it is. An image is shown only when it names a file
in the report's own folder; its URL is the console's file route, never the text as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from markupsafe import Markup, escape

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
_CODE = re.compile(r"`([^`]+)`")
_SEPARATOR = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")

ImageUrl = Callable[[str], str | None]
"""The URL of an image a report names (its text as written), or None: not a file beside the report."""


def _inline(text: str) -> Markup:
    """`text` escaped, with `code` spans marked."""
    parts: list[Markup] = []
    position = 0
    for match in _CODE.finditer(text):
        parts.append(escape(text[position : match.start()]))
        parts.append(Markup("<code>%s</code>") % match[1])
        position = match.end()
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(inner)]


def _table(lines: list[str]) -> Markup:
    header, *rows = lines
    rows = [row for row in rows if not _SEPARATOR.match(row.strip())]
    head = Markup("").join(Markup('<th scope="col">%s</th>') % _inline(cell) for cell in _cells(header))
    body = Markup("").join(
        Markup("<tr>%s</tr>") % Markup("").join(Markup("<td>%s</td>") % _inline(cell) for cell in _cells(row))
        for row in rows
    )
    return Markup(
        '<div class="table-wrap"><table class="grid"><thead><tr>%s</tr></thead><tbody>%s</tbody></table></div>'
    ) % (head, body)


def _blocks(lines: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(kind, lines) runs: table, list, heading, image, paragraph; blank lines end a run."""
    kind: str = ""
    run: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped:
            next_kind = ""
        elif stripped.startswith("|"):
            next_kind = "table"
        elif stripped.startswith(("- ", "* ")):
            next_kind = "list"
        elif _HEADING.match(stripped) or _IMAGE.match(stripped):
            next_kind = "single"
        else:
            next_kind = "paragraph"
        if run and (next_kind != kind or kind == "single"):
            yield kind, run
            run = []
        kind = next_kind
        if next_kind:
            run.append(stripped)
    if run:
        yield kind, run


def _single(line: str, image_url: ImageUrl) -> Markup:
    heading = _HEADING.match(line)
    if heading:
        level = min(len(heading[1]) + 1, 6)  # the page's own title is the h1
        return Markup("<h%d>%s</h%d>") % (level, _inline(heading[2]), level)
    image = _IMAGE.match(line)
    assert image is not None
    url = image_url(image[2])
    if url is None:
        return Markup("<p>%s</p>") % line
    return Markup('<p><img src="%s" alt="%s"></p>') % (url, image[1])


def render_markdown(text: str, image_url: ImageUrl) -> Markup:
    """`text` (a report's markdown) as HTML; no character of it reaches the page unescaped."""
    html: list[Markup] = []
    for kind, run in _blocks(text.splitlines()):
        if kind == "table":
            html.append(_table(run))
        elif kind == "list":
            items = Markup("").join(Markup("<li>%s</li>") % _inline(line[2:]) for line in run)
            html.append(Markup("<ul>%s</ul>") % items)
        elif kind == "single":
            html.extend(_single(line, image_url) for line in run)
        else:
            html.append(Markup("<p>%s</p>") % _inline(" ".join(run)))
    return Markup("\n").join(html)
