"""Progress of a long command: a rich bar on a terminal, plain lines otherwise.

Either way it says what is done, the time so far and an estimate of what is left: the
service's own estimate when it sends one (the trainer's), else the pace so far. Plain lines come
at most every `plain_every_s` seconds (and always for the last), so a log stays readable.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress


def duration(seconds: float) -> str:
    """`42 s`, `3 min 10 s`, `1 h 5 min`."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class Progress:
    """One long step. Use as a context manager; `update` as the work advances."""

    def __init__(
        self, console: Console, title: str, total: int | None = None, unit: str = "tasks", plain_every_s: float = 5.0
    ) -> None:
        self.console = console
        self.title = title
        self.total = total
        self.unit = unit
        self.done = 0
        self.note = ""
        self.left_s: float | None = None
        self._plain_every_s = plain_every_s
        self._started = time.monotonic()
        self._printed_at = float("-inf")
        self._printed_state: tuple[object, ...] | None = None
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if self.console.is_terminal:
            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[left]}"),
                console=self.console,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.title, total=self.total, left="")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif kind is None and self._printed_state not in (None, self._state()):
            self._print()  # the last state, whatever the throttle held back

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def estimate_left_s(self) -> float | None:
        """The service's estimate if it gave one, else the time per unit so far times what is left."""
        if self.left_s is not None:
            return self.left_s
        if not self.total or not self.done or self.done >= self.total:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)

    def update(
        self, done: int | None = None, *, total: int | None = None, note: str | None = None, left_s: float | None = None
    ) -> None:
        """Records how far the work is (`done` of `total` units), a status `note`, the service's estimate."""
        self.done = self.done if done is None else done
        self.total = self.total if total is None else total
        self.note = self.note if note is None else note
        self.left_s = left_s
        if self._bar is not None and self._task is not None:
            description = f"{self.title} [dim]{self.note}[/dim]" if self.note else self.title
            self._bar.update(self._task, completed=self.done, total=self.total, description=description,
                             left=self._left_text())  # fmt: skip
            return
        if self._state() == self._printed_state:
            return
        finished = self.total is not None and self.done >= self.total
        if finished or time.monotonic() - self._printed_at >= self._plain_every_s:
            self._print()

    def _left_text(self) -> str:
        left = self.estimate_left_s()
        return "" if left is None else f"about {duration(left)} left"

    def _line(self) -> str:
        count = f"{self.done} {self.unit}" if self.done else ""
        if self.total:
            count = f"{self.done}/{self.total} {self.unit}"
        parts = [p for p in (count, f"{duration(self.elapsed_s)} so far", self._left_text(), self.note) if p]
        return f"{self.title}: {', '.join(parts)}"

    def _state(self) -> tuple[object, ...]:
        return self.done, self.total, self.note

    def _print(self) -> None:
        self.console.print(self._line(), highlight=False, markup=False, soft_wrap=True)
        self._printed_state = self._state()
        self._printed_at = time.monotonic()
