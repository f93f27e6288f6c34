"""A shorter rendering of Playwright's ARIA snapshots (`snapshot_style: compact`).

`page.aria_snapshot(mode="ai")` prints every node of the accessibility tree with a ref, the
URL of every link (`- /url: ...`) and hints such as `[cursor=pointer]`. A small model on a CPU
pays for each of those tokens at every step and in every training row (the shop's pages take
500-800 tokens each). The compact style keeps what a model acts on and reads:

- refs only on elements one interacts with (links, buttons, inputs, options...) or that are
  clickable (`[cursor=pointer]`): every other ref still works, it is just not printed;
- no `/url:` children, no `[cursor=pointer]`, `[active]` or heading `[level=N]` markers;
- unnamed structural wrappers (generic, list, listitem, main, banner, ...) are replaced by
  their children; one with only inline text becomes `- text: ...`; named ones stay, as
  headers (`- list "Details":`), since their name is what tells one list from another.

The result is still the same YAML-like outline, lines in document order; a line this does not
understand (multi-line text, a future attribute) is kept as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

INTERACTIVE_ROLES = frozenset(
    {
        "button", "checkbox", "combobox", "link", "listbox", "menuitem", "menuitemcheckbox", "menuitemradio",
        "option", "radio", "scrollbar", "searchbox", "slider", "spinbutton", "switch", "tab", "textbox", "treeitem",
    }
)  # fmt: skip
"""Roles whose ref stays printed."""

WRAPPER_ROLES = frozenset(
    {
        "article", "banner", "complementary", "contentinfo", "document", "form", "generic", "group", "list",
        "listitem", "main", "navigation", "none", "presentation", "region", "search", "section",
    }
)  # fmt: skip
"""Roles that are replaced by their children when they have no name."""

_DROPPED_ATTRIBUTES = re.compile(r"^\[(cursor=pointer|active|level=\d+)\]$")
_LINE = re.compile(r"^(?P<indent> *)- (?P<body>.*)$")
_BODY = re.compile(
    r'^(?P<role>[A-Za-z/][\w/-]*)(?: "(?P<name>(?:[^"\\]|\\.)*)")?(?P<attrs>(?: \[[^\]]*\])*):?(?: (?P<value>.*))?$'
)
_ATTRIBUTE = re.compile(r"\[[^\]]*\]")


@dataclass
class _Node:
    indent: int
    raw: str
    role: str = ""
    name: str | None = None
    attrs: list[str] = field(default_factory=list)
    value: str | None = None
    parsed: bool = False
    dash: bool = True  # a `- ...` line (else a line outside any item, kept verbatim)
    children: list[_Node] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # continuation lines kept verbatim


def _parse(text: str) -> list[_Node]:
    roots: list[_Node] = []
    stack: list[_Node] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            if stack:
                stack[-1].extra.append(line.strip())
            else:
                roots.append(_Node(0, line, dash=False))
            continue
        node = _Node(len(match["indent"]), match["body"])
        body = _BODY.match(match["body"])
        if body is not None:
            node.parsed = True
            node.role, node.name, node.value = body["role"], body["name"], body["value"]
            node.attrs = _ATTRIBUTE.findall(body["attrs"] or "")
        while stack and stack[-1].indent >= node.indent:
            stack.pop()
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    return roots


def _compact_nodes(nodes: list[_Node]) -> list[_Node]:
    out: list[_Node] = []
    for node in nodes:
        if node.parsed and node.role.startswith("/"):
            continue  # `/url: ...` and other properties
        node.children = _compact_nodes(node.children)
        if not node.parsed:
            out.append(node)
            continue
        clickable = "[cursor=pointer]" in node.attrs
        keep_ref = node.role in INTERACTIVE_ROLES or clickable
        node.attrs = [
            a for a in node.attrs if not _DROPPED_ATTRIBUTES.match(a) and (keep_ref or not a.startswith("[ref="))
        ]
        if node.role in WRAPPER_ROLES and node.name is None and not clickable and not node.extra:
            if node.value is not None:
                out.append(_Node(node.indent, "", role="text", value=node.value, parsed=True))
            out.extend(node.children)
            continue
        out.append(node)
    return out


def _render(nodes: list[_Node], depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    for node in nodes:
        if not node.parsed:
            lines.append(f"{pad}- {node.raw}" if node.dash else node.raw)
        else:
            head = node.role + (f' "{node.name}"' if node.name is not None else "")
            head += "".join(f" {a}" for a in node.attrs)
            if node.children or node.extra or node.value is not None:
                head += ":"
            if node.value is not None:
                head += f" {node.value}"
            lines.append(f"{pad}- {head}")
        lines.extend(f"{pad}  {line}" for line in node.extra)
        _render(node.children, depth + 1, lines)


def compact_snapshot(text: str) -> str:
    """The compact rendering of an `aria_snapshot(mode="ai")` text (see the module's docstring)."""
    lines: list[str] = []
    _render(_compact_nodes(_parse(text)), 0, lines)
    return "\n".join(lines)
