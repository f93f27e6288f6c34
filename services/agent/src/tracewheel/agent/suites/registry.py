"""The registry of suites: the bundled shop and the files a team added.

An added file is validated whole first (every problem listed, each naming the file, the task and
the field), then written atomically to the registry folder (`TRACEWHEEL_HOME/agent/suites/` by
default) under its suite's name: a file that does not validate leaves nothing behind, and a
suite is never registered half-way. The folder is read on each request (parsed again only when
a file changed), so a suite added through one agent replica is seen by the others sharing it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tracewheel.agent.suites.files import FORMATS, SuiteFileError, parse_suite, read_suite_file, suite_format
from tracewheel.agent.suites.suite import Suite, SuiteRef, suite_from_spec
from tracewheel.agent.tasks.model import Task
from tracewheel.core.errors import Conflict, FailedPrecondition, NotFound
from tracewheel.core.files import write_text_atomically

logger = logging.getLogger(__name__)

SuiteFactory = Callable[[], Suite]


@dataclass(frozen=True)
class Entry:
    """A registered suite, or the reason its file no longer loads (e.g. an entry point gone)."""

    name: str
    source: str
    suite: Suite | None
    error: str = ""


@dataclass(frozen=True)
class Resolved:
    """What a reference names: the reference (with its split), the suite and the tasks to run."""

    ref: SuiteRef
    suite: Suite
    tasks: list[Task]


class SuiteRegistry:
    """Bundled suites (made by Python, once) and the suite files in `directory`.

    Args:
        directory: where added files are kept (None: bundled suites only; nothing can be added).
        bundled: name -> a function making the suite (called on first use).
    """

    def __init__(self, directory: Path | None, bundled: Mapping[str, SuiteFactory]) -> None:
        self.directory = directory
        self._factories = dict(bundled)
        self._bundled: dict[str, Suite] = {}
        self._files: dict[Path, tuple[int, Suite]] = {}

    def _file_of(self, name: str) -> Path | None:
        if self.directory is None:
            return None
        found = [self.directory / f"{name}{ext}" for ext in FORMATS if (self.directory / f"{name}{ext}").exists()]
        return found[0] if found else None

    def add(self, text: str, filename: str, *, replace: bool = False) -> Suite:
        """Validates a suite file's text and registers it under its suite's name.

        Raises:
            SuiteFileError: the file does not validate (nothing is written).
            Conflict: the name is bundled, or registered already and `replace` is not set.
            FailedPrecondition: this registry has no folder to keep files in.
        """
        if self.directory is None:
            raise FailedPrecondition("this agent keeps no suite files (it has no suites directory)")
        spec = parse_suite(text, filename)
        if spec.name in self._factories:
            raise Conflict(f"{filename}: suite name {spec.name!r} is the bundled suite's; choose another name")
        existing = self._file_of(spec.name)
        if existing is not None and not replace:
            raise Conflict(f"{filename}: suite {spec.name!r} is registered already ({existing}); replace it explicitly")
        extension = ".jsonl" if suite_format(filename) == "jsonl" else ".yaml"
        path = self.directory / f"{spec.name}{extension}"
        write_text_atomically(path, text)
        if existing is not None and existing != path:
            existing.unlink(missing_ok=True)
        suite = suite_from_spec(spec, str(path))
        self._files[path] = (path.stat().st_mtime_ns, suite)
        logger.info("registered suite %s from %s: %d tasks", spec.name, filename, len(suite.tasks))
        return suite

    def _load_file(self, path: Path) -> Suite:
        mtime = path.stat().st_mtime_ns
        cached = self._files.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        suite = suite_from_spec(read_suite_file(path), str(path))
        self._files[path] = (mtime, suite)
        return suite

    def names(self) -> list[str]:
        """Bundled names first, then the files' in name order."""
        present = self.directory.glob("*") if self.directory is not None and self.directory.exists() else []
        files = sorted({path.stem for path in present if path.suffix in FORMATS})
        return [*self._factories, *(name for name in files if name not in self._factories)]

    def get(self, name: str) -> Suite:
        """Raises:
        NotFound: no suite of that name.
        SuiteFileError: its registered file no longer validates.
        """
        if name in self._factories:
            if name not in self._bundled:
                self._bundled[name] = self._factories[name]()
            return self._bundled[name]
        path = self._file_of(name)
        if path is None:
            raise NotFound(f"no suite {name!r}; registered suites: {', '.join(self.names())}")
        return self._load_file(path)

    def entries(self) -> list[Entry]:
        """Every suite, with the error of a file that no longer loads."""
        entries = []
        for name in self.names():
            source = "bundled" if name in self._factories else str(self._file_of(name))
            try:
                entries.append(Entry(name, source, self.get(name)))
            except SuiteFileError as exc:
                entries.append(Entry(name, source, None, str(exc)))
        return entries

    def resolve(self, reference: str, default_split: Literal["train", "heldout"] | None) -> Resolved:
        """The suite and tasks a reference names (`NAME`, `NAME:SPLIT`, or the shop's `train`/`heldout`).

        Raises:
            InvalidArgument: a malformed reference.
            NotFound: no such suite, or no task in that split.
            SuiteFileError: the suite's file no longer validates.
        """
        ref = SuiteRef.parse(reference)
        if default_split is not None:
            ref = ref.with_default(default_split)
        suite = self.get(ref.name)
        return Resolved(ref, suite, suite.tasks_of(ref.split))
