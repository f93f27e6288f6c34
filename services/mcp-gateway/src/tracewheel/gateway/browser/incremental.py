"""Incremental snapshots (`snapshot_mode: incremental`): after an action, only what changed.

When an action leaves the tab on the page the model last saw (same tab, same URL), most of
its snapshot is the one the model already has a few messages up: a quantity typed into a form
changes one line of a 450-token page. A small model on a CPU pays for every token of every
result, at each later step and in every training row, so an incremental result prints only

- the lines that are new or changed, each under its ancestor lines (the outline above it), so a
  changed field still reads as part of its form;
- the lines that are gone, in a section of their own.

Everything not printed, refs included, is as in the last snapshot the model saw of that page.
A change to more than half the page is printed in full: a diff as long as the page would only
be harder to read. `browser_snapshot` always prints the whole page.
"""

from __future__ import annotations

import difflib

MAX_CHANGED_FRACTION = 0.5
"""Above this share of changed lines the page is printed in full."""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _element(line: str) -> str:
    """A line without its value: `- spinbutton "Quantity" [ref=e28]: "3"` -> `- spinbutton "Quantity"`."""
    head = line.split(": ", 1)[0].rstrip(":")
    return " ".join(part for part in head.split(" ") if not part.startswith("["))


def _with_ancestors(lines: list[str], changed: list[int]) -> list[str]:
    """`lines[i]` for each i in `changed`, in order, each preceded by its not yet printed ancestors."""
    keep: set[int] = set()
    for index in changed:
        keep.add(index)
        depth = _indent(lines[index])
        for above in range(index - 1, -1, -1):
            if depth == 0:
                break
            if _indent(lines[above]) < depth:
                keep.add(above)
                depth = _indent(lines[above])
    return [lines[i] for i in sorted(keep)]


def snapshot_changes(before: str, after: str) -> tuple[str, str] | None:
    """What changed from snapshot `before` to `after`, as two outlines: (changed, removed).

    `changed` holds the new or changed lines of `after` under their ancestors; `removed` the
    lines of `before` that are gone (both may be empty: nothing changed). None: the change is
    too large to print as a diff (see MAX_CHANGED_FRACTION); print `after` whole.
    """
    old, new = before.splitlines(), after.splitlines()
    changed: list[int] = []
    removed: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if tag == "equal":
            continue
        changed.extend(range(new_start, new_end))
        if tag == "delete":
            removed.extend(old[old_start:old_end])
        elif tag == "replace":
            # a line whose element is still there with another value or state is changed, not gone
            kept = {_element(line) for line in new[new_start:new_end]}
            removed.extend(line for line in old[old_start:old_end] if _element(line) not in kept)
    if len(changed) + len(removed) > MAX_CHANGED_FRACTION * max(len(new), 1):
        return None
    return "\n".join(_with_ancestors(new, changed)), "\n".join(removed)
