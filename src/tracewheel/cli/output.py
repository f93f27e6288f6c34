"""What a command prints: with `--json`, one JSON document (or JSON Lines for a stream) on stdout
and nothing else there; without it, human text on the console.

JSON goes through `print`, never through rich: rich's console wraps long lines at its width
(80 columns when stdout is not a terminal), which broke `--json | jq`. With `--json` the
console (human text, progress, prompts) writes to stderr instead.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console, RenderableType


def wants_json(args: argparse.Namespace) -> bool:
    """Whether the command was given `--json`."""
    return bool(getattr(args, "json", False))


def console_for(args: argparse.Namespace) -> Console:
    """The console for human text: stdout, or stderr when stdout carries JSON."""
    return Console(stderr=wants_json(args))


def print_json(data: Any) -> None:
    """One JSON document on one stdout line (a JSON Lines stream is several calls)."""
    print(json.dumps(data, ensure_ascii=False), flush=True)


def emit(args: argparse.Namespace, console: Console, data: Any, human: RenderableType) -> None:
    """A command's result: `data` as JSON with `--json`, else `human` on the console."""
    if wants_json(args):
        print_json(data)
    else:
        console.print(human)
