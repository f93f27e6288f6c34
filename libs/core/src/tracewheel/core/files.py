"""Files written so that a reader (or a restart after a kill) sees the old content or the new, never half."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def write_text_atomically(path: Path, text: str) -> None:
    """Writes `text` (UTF-8) to a temporary file beside `path` (parents created), fsyncs it, then renames
    it into place; on any failure the temporary file is removed and `path` keeps its old content.

    Raises:
        OSError: the folder cannot be created or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name per writer, so two writers never share a staging file; not mkstemp, whose 0600 would
    # leave the file unreadable to other users of a shared volume.
    staging = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with staging.open("xb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def write_json_atomically(path: Path, data: Any, *, indent: int | None = 1) -> None:
    """Writes `data` as JSON (ASCII, `indent` spaces) to `path` through `write_text_atomically`.

    Raises:
        TypeError: `data` is not JSON-serialisable (nothing is written).
        OSError: the folder cannot be created or written.
    """
    write_text_atomically(path, json.dumps(data, indent=indent))


@contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A fresh folder beside `target` to fill; renamed to `target` when the block ends, removed
    with everything in it when the block raises. `target` must not exist (or be an empty folder)
    when the block ends.

    Raises:
        OSError: the rename failed (`target` exists, or another file system).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's folder is private; the result is for other readers of a shared volume
    try:
        yield staging
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
