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

_IMAGE_PATH = re.compile(r"(?P<path>[^\s\[\]()'\"<>]+\.(?:png|jpe?g|gif|webp))\b", re.IGNORECASE)


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


def image_paths(text: str, root: Path | None) -> list[str]:
    """The images `text` mentions that exist inside `root`, as paths relative to it (in order, once each)."""
    if root is None:
        return []
    base = root.resolve()
    found: list[str] = []
    for match in _IMAGE_PATH.finditer(text):
        candidate = Path(match["path"])
        try:
            target = (candidate if candidate.is_absolute() else base / candidate).resolve()
        except OSError:
            continue
        if target.is_relative_to(base) and target.is_file():
            relative = target.relative_to(base).as_posix()
            if relative not in found:
                found.append(relative)
    return found
