"""Rendering many training rows at once, to exactly the tokens and masks of `render.render_row`.

`render_row` renders a row's template twice (its text, then its tokens with the generation
mask) and tokenizes the whole text, row by row. Here each row is rendered once, keeping the
text and its generation spans (transformers' `render_jinja_template`, what `apply_chat_template`
calls), and the text is cut at the tokenizer's added tokens (`<|im_start|>`, `<|im_end|>`, ...).
A fast tokenizer splits its input at added tokens before anything else and never merges across
one, so each piece tokenizes on its own to the ids it gets inside the row. The distinct pieces
of a chunk of rows are tokenized in one call of the fast tokenizer, with their offsets: the
system turn with its tools is the same in every row, and a trace's later row repeats the earlier
row's turns, so most pieces are tokenized once. A row's ids are its pieces' in order, and the
template's mask comes from the generation spans by character, as `apply_chat_template` computes
it (the first token holding the span's first character through the one holding its last). The
rest, targets and their decode check, is `render.target_mask`, shared with `render_row`.

A tokenizer that would not split at its added tokens first (one with stripping, single-word or
normalized added tokens, or set to split special tokens) gets each row's whole text as its one
piece: still one batched call per chunk, no reuse.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transformers.utils.chat_template_utils import render_jinja_template

from tracewheel.dataset.render import RenderedRow, chat_messages, chat_tools, render_row, target_mask
from tracewheel.dataset.unroll import TrainingRow

CHUNK_ROWS = 256
"""Rows rendered and tokenized together: pieces repeat within a chunk (a trace's rows are adjacent)."""


@dataclass(frozen=True)
class _Piece:
    """A piece's tokens and their character spans inside the piece (an added token: one token over all of it)."""

    ids: list[int]
    starts: list[int]
    ends: list[int]
    ordered: bool  # starts and ends never decrease, so a character's token is found by bisection

    def token_at(self, char: int) -> int | None:
        """The first token whose span holds `char` (tokenizers' `char_to_token`), or None."""
        if self.ordered:
            index = bisect_right(self.ends, char)
            return index if index < len(self.ids) and self.starts[index] <= char else None
        return next((i for i, (s, e) in enumerate(zip(self.starts, self.ends, strict=True)) if s <= char < e), None)


def _ordered(values: list[int]) -> bool:
    return values == sorted(values)  # linear on sorted input, and in C


def _added_token_splitter(tokenizer: Any) -> tuple[re.Pattern[str] | None, dict[str, int]]:
    """A pattern matching the tokenizer's added tokens (longest first, as the tokenizer matches them)
    and their ids; no pattern when splitting there first would not give the tokenizer's ids."""
    added = tokenizer.backend_tokenizer.get_added_tokens_decoder()
    has_normalizer = tokenizer.backend_tokenizer.normalizer is not None
    plain = all(
        not (token.lstrip or token.rstrip or token.single_word or (token.normalized and has_normalizer))
        for token in added.values()
    )
    if not added or not plain or getattr(tokenizer, "split_special_tokens", False):
        return None, {}
    ids = {token.content: token_id for token_id, token in added.items()}
    alternatives = sorted(ids, key=len, reverse=True)
    return re.compile("(" + "|".join(re.escape(content) for content in alternatives) + ")"), ids


class BatchRenderer:
    """Renders rows in chunks with one tokenizer call each; the same rows as `render_row`, row by row."""

    def __init__(self, tokenizer: Any, chat_template: str) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self._template_kwargs = dict(tokenizer.special_tokens_map)  # what apply_chat_template passes
        self._splitter, self._added = _added_token_splitter(tokenizer)
        self._added_pieces = {
            content: _Piece([token_id], [0], [len(content)], True) for content, token_id in self._added.items()
        }

    def render(self, rows: Sequence[TrainingRow]) -> list[RenderedRow]:
        """Each row's tokens and target-only mask, in order.

        Raises:
            RenderError: a row's mask cannot be matched to its assistant turns (names the trace).
        """
        self._prepare_backend()
        rendered: list[RenderedRow] = []
        for start in range(0, len(rows), CHUNK_ROWS):
            rendered += self._render_chunk(rows[start : start + CHUNK_ROWS])
        return rendered

    def _text(self, row: TrainingRow) -> tuple[str, list[tuple[int, int]]]:
        """The row's rendered text and its generation spans (characters), rendered once."""
        messages = [{k: v for k, v in message.items() if v is not None} for message in chat_messages(row)]
        tools = chat_tools(row)
        texts, spans = render_jinja_template(
            [messages],
            tools=tools or None,
            chat_template=self.chat_template,
            return_assistant_tokens_mask=True,
            **self._template_kwargs,
        )
        return texts[0], spans[0]

    def _split(self, text: str) -> list[str]:
        if self._splitter is None:
            return [text]
        return [piece for piece in self._splitter.split(text) if piece]

    def _tokenized(self, pieces: set[str]) -> dict[str, _Piece]:
        """The pieces' tokens: added tokens by id, every other piece in one call of the tokenizer."""
        found = {piece: self._added_pieces[piece] for piece in pieces if piece in self._added_pieces}
        texts = [piece for piece in pieces if piece not in found]
        for text, (ids, offsets) in zip(texts, self._encode(texts), strict=True):
            starts, ends = [s for s, _ in offsets], [e for _, e in offsets]
            found[text] = _Piece(ids, starts, ends, _ordered(starts) and _ordered(ends))
        return found

    def _encode(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Ids and character offsets of each text, in one call of the fast tokenizer."""
        if not texts:
            return []
        encodings = self.tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
        return [(e.ids, e.offsets) for e in encodings]

    def _prepare_backend(self) -> None:
        """The settings `tokenizer(texts, add_special_tokens=False)` makes before the same Rust call,
        whose encodings are read here directly (its conversion to Python lists costs as much as encoding)."""
        backend = self.tokenizer.backend_tokenizer
        if backend.truncation is not None:
            backend.no_truncation()
        if backend.padding is not None:
            backend.no_padding()
        split_special = bool(getattr(self.tokenizer, "split_special_tokens", False))
        if backend.encode_special_tokens != split_special:
            backend.encode_special_tokens = split_special

    def _render_chunk(self, rows: Sequence[TrainingRow]) -> list[RenderedRow]:
        texts = [self._text(row) for row in rows]
        split = [self._split(text) for text, _ in texts]
        tokenized = self._tokenized({piece for pieces in split for piece in pieces})
        return [
            self._row(row, text, spans, [tokenized[piece] for piece in pieces], pieces)
            for row, (text, spans), pieces in zip(rows, texts, split, strict=True)
        ]

    def _row(
        self, row: TrainingRow, text: str, spans: list[tuple[int, int]], pieces: list[_Piece], texts: list[str]
    ) -> RenderedRow:
        input_ids: list[int] = []
        char_starts: list[int] = []  # each piece's first character in the text
        token_starts: list[int] = []  # each piece's first token in the row
        position = 0
        for piece, piece_text in zip(pieces, texts, strict=True):
            char_starts.append(position)
            token_starts.append(len(input_ids))
            input_ids += piece.ids
            position += len(piece_text)

        def char_to_token(char: int) -> int | None:
            index = bisect_right(char_starts, char) - 1
            if index < 0 or char >= position:
                return None
            local = pieces[index].token_at(char - char_starts[index])
            return None if local is None else token_starts[index] + local

        return target_mask(self.tokenizer, row, input_ids, generation_mask(char_to_token, spans, len(input_ids)), text)


def generation_mask(char_to_token: Any, spans: list[tuple[int, int]], length: int) -> list[int]:
    """The template's mask of every generated span, computed as `apply_chat_template` does."""
    mask = [0] * length
    for start_char, end_char in spans:
        start, end = char_to_token(start_char), char_to_token(end_char - 1)
        if start is None:  # as transformers: a span past the tokens ends the mask
            break
        stop = end + 1 if end else length
        mask[start:stop] = [1] * max(0, stop - start)
    return mask


def render_rows(tokenizer: Any, chat_template: str, rows: Sequence[TrainingRow]) -> list[RenderedRow]:
    """`[render_row(tokenizer, chat_template, row) for row in rows]`, rendered and tokenized in batches.

    Raises:
        RenderError: a row's mask cannot be matched to its assistant turns (names the trace).
    """
    if not getattr(tokenizer, "is_fast", False):  # a Python tokenizer has no batched Rust encoder
        return [render_row(tokenizer, chat_template, row) for row in rows]
    return BatchRenderer(tokenizer, chat_template).render(rows)
