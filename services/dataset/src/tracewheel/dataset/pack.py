"""Packing a trace's per-turn rows into one prefix tree: shared tokens once, each turn its own path.

A trace run with an observation window trains as one row per turn (unroll.py), and the rows
of one trace share most of their tokens: the system prompt with the tools, the request, the
calls made so far. Rendered one after the other they would train ~2.6 times the tokens of the
trace (the demo's ten demonstrations: 73.7k against 28.4k). Packed, each row contributes only
what follows its longest common prefix with the row before it; the new tokens hang off the
last shared one, and attention follows the tree: a token sees its own row's tokens and nothing
of a sibling branch. The loss is then the sum of the rows' losses, each in its own context.

The packed row is three lists of one length: `input_ids`, `position_ids` (the token's place in
its own row, which the rotary embedding reads) and `parents` (the index, in the packed row, of
the token before it in its own row; -1 for the first). The trainer builds the attention mask
from `parents` (trainer/prefix_tree.py). A trained token's parent is always the token just
before it in the packed row, so next-token labels shift as in any row.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracewheel.core.sequences import common_prefix_length
from tracewheel.dataset.render import RenderedRow, RenderError


def pack_prefix_tree(rows: Sequence[RenderedRow], trace_id: str = "") -> RenderedRow:
    """The rows, in order, as one prefix-tree row (see the module docstring).

    Raises:
        RenderError: a row trains a token the row before it already holds (its targets would
            sit in the shared prefix), or a row adds nothing to the one before it.
    """
    input_ids: list[int] = []
    masks: list[int] = []
    positions: list[int] = []
    parents: list[int] = []
    previous: Sequence[int] = ()
    path: list[int] = []  # indices in the packed row of the previous row's tokens
    for number, row in enumerate(rows):
        shared = common_prefix_length(previous, row.input_ids)
        if shared == len(row.input_ids) or any(row.assistant_masks[: shared + 1]):
            raise RenderError(
                f"trace {trace_id!r}: row {number} of its per-turn rows repeats {shared} tokens of the row before it"
                " up to or into its trained turn; per-turn rows must differ before their targets"
            )
        path = path[:shared]
        for position in range(shared, len(row.input_ids)):
            parents.append(path[-1] if path else -1)
            path.append(len(input_ids))
            positions.append(position)
            input_ids.append(row.input_ids[position])
            masks.append(row.assistant_masks[position])
        previous = row.input_ids
    return RenderedRow(input_ids=input_ids, assistant_masks=masks, position_ids=positions, parents=parents)
