"""Progress of long commands when the output is not a terminal: plain lines with an estimate."""

from __future__ import annotations

import io

from rich.console import Console

from tracewheel.cli.progress import Progress, duration


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=80), out


def test_durations_read_as_a_person_says_them() -> None:
    assert [duration(s) for s in (0.4, 42, 190, 3900)] == ["0 s", "42 s", "3 min 10 s", "1 h 5 min"]


def test_plain_lines_say_what_is_done_the_time_and_what_is_left() -> None:
    console, out = plain_console()
    with Progress(console, "evaluating m on heldout", total=4, plain_every_s=3600) as progress:
        progress.update(0)
        progress.update(1)  # held back: less than plain_every_s since the last line
        progress.update(4)  # the last is always printed
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("evaluating m on heldout: 0/4 tasks, 0 s so far")
    assert lines[1].startswith("evaluating m on heldout: 4/4 tasks") and len(lines) == 2
    assert all(len(line) > 0 for line in lines)


def test_the_services_estimate_wins_and_long_lines_are_not_wrapped() -> None:
    console, out = plain_console()
    note = "loss 0.123 " + "x" * 100
    with Progress(console, "training job j1", total=10, unit="steps") as progress:
        progress.update(3, note=note, left_s=190)
    (line,) = out.getvalue().splitlines()
    assert "3/10 steps" in line and "about 3 min 10 s left" in line and line.endswith(note)


def test_the_state_held_back_is_printed_when_the_step_ends() -> None:
    console, out = plain_console()
    with Progress(console, "importing traces", total=3, unit="traces", plain_every_s=3600) as progress:
        progress.update(1)
        progress.update(2)
    assert [line.split(":")[1].split(",")[0].strip() for line in out.getvalue().splitlines()] == [
        "1/3 traces",
        "2/3 traces",
    ]


def test_an_estimate_comes_from_the_pace_so_far() -> None:
    console, _ = plain_console()
    progress = Progress(console, "x", total=4)
    assert progress.estimate_left_s() is None  # nothing done yet: no pace
    progress.done = 1
    progress._started -= 30  # one task took 30 s
    left = progress.estimate_left_s()
    assert left is not None and 89 < left < 92
