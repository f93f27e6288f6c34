"""Files the gateway saved beside tool results (screenshots), found in result text and served safely.

The gateway writes `[image saved to /abs/path.png (image/png, N bytes)]` into a tool result.
Only files inside the configured attachments directory are ever shown or served: a path that
resolves outside it (`..`, an absolute path elsewhere, a symlink out) is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

from tracewheel.core.errors import InvalidArgument, NotFound

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
"""Served inline as images; anything else is served as plain text (never as HTML or SVG)."""

# A path is the longest run of characters outside these delimiters up to its last image extension.
# Found in two linear passes (runs, then extensions inside a run): one pattern doing both backtracks
# over every start of a long run: quadratic in its length, seconds for a long tool result.
_RUN = re.compile(r"[^\s\[\]()'\"<>]+")
_IMAGE_EXTENSION = re.compile(r"\.(?:png|jpe?g|gif|webp)\b", re.IGNORECASE)


def resolve_attachment(root: Path, relative: str) -> Path:
    """The file at `relative` inside `root`.

    Raises:
        InvalidArgument: the path escapes `root`.
        NotFound: no such file.
    """
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise InvalidArgument(f"path: {relative!r} is outside the attachments directory")
    if not target.is_file():
        raise NotFound(f"attachment {relative!r} does not exist")
    return target


def mentioned_images(text: str) -> list[str]:
    """The image paths `text` mentions (in order), in time linear in its length."""
    paths = []
    for run in _RUN.finditer(text):
        ends = [m.end() for m in _IMAGE_EXTENSION.finditer(run[0]) if m.start() > 0]
        if ends:
            paths.append(run[0][: ends[-1]])
    return paths


def image_paths(text: str, root: Path | None) -> list[str]:
    """The images `text` mentions that exist inside `root`, as paths relative to it (in order, once each)."""
    if root is None:
        return []
    base = root.resolve()
    found: list[str] = []
    for mentioned in mentioned_images(text):
        candidate = Path(mentioned)
        try:  # a name too long for the file system is no attachment (and no reason to fail the page)
            target = (candidate if candidate.is_absolute() else base / candidate).resolve()
            if not (target.is_relative_to(base) and target.is_file()):
                continue
        except OSError:
            continue
        relative = target.relative_to(base).as_posix()
        if relative not in found:
            found.append(relative)
    return found
