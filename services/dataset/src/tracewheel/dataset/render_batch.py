"""Rendering many training rows at once, to exactly the tokens and masks of `render.render_row`.

`render_row` renders a row's template twice (its text, then its tokens with the generation
mask) and tokenizes the whole text, row by row. Here each row is rendered once, keeping the
text and its generation spans (as `apply_chat_template` renders them, in template_sandbox.py's
faster sandbox, from the build's messages converted once: `render.ChatDicts`), and the text is
cut at the tokenizer's added tokens (`<|im_start|>`, `<|im_end|>`, ...).
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tracewheel.dataset.render import ChatDicts, RenderedRow, render_row, target_mask
from tracewheel.dataset.template_sandbox import compile_template, render_with_spans
from tracewheel.dataset.unroll import TrainingRow

CHUNK_ROWS = 256
"""Rows rendered and tokenized together: pieces repeat within a chunk (a trace's rows are adjacent)."""


class _Piece:
    """A piece's tokens and, read when first asked, their character spans inside the piece (an added
    token: one token over all of it). Only pieces holding a generation span's edge are asked."""

    __slots__ = ("_encoding", "_ends", "_ordered", "_starts", "ids")

    def __init__(self, ids: list[int], encoding: Any = None, spans: list[tuple[int, int]] | None = None) -> None:
        self.ids = ids
        self._encoding = encoding  # a tokenizers Encoding, whose offsets are converted on first use
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._ordered = False
        if spans is not None:
            self._read(spans)

    def _read(self, offsets: list[tuple[int, int]]) -> None:
        self._starts, self._ends = [s for s, _ in offsets], [e for _, e in offsets]
        # starts and ends never decrease (checked in C: linear on sorted input): find by bisection
        self._ordered = self._starts == sorted(self._starts) and self._ends == sorted(self._ends)
        self._encoding = None

    def token_at(self, char: int) -> int | None:
        """The first token whose span holds `char` (tokenizers' `char_to_token`), or None."""
        if self._encoding is not None:
            self._read(self._encoding.offsets)
        if self._ordered:
            index = bisect_right(self._ends, char)
            return index if index < len(self.ids) and self._starts[index] <= char else None
        spans = zip(self._starts, self._ends, strict=True)
        return next((i for i, (s, e) in enumerate(spans) if s <= char < e), None)


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


@dataclass(frozen=True)
class _Chunk:
    """Rendered rows waiting for their pieces' tokens."""

    rows: Sequence[TrainingRow]
    texts: list[tuple[str, list[tuple[int, int]]]]
    split: list[list[str]]  # each row's text cut at added tokens
    encoded: list[str]  # the chunk's distinct pieces that are no added token, sent to the tokenizer
    encodings: Future[list[Any]]  # their encodings, in that order


class BatchRenderer:
    """Renders rows in chunks with one tokenizer call each; the same rows as `render_row`, row by row."""

    def __init__(self, tokenizer: Any, chat_template: str, chat: ChatDicts | None = None) -> None:
        self.tokenizer = tokenizer
        self.chat = chat or ChatDicts()
        self._template = compile_template(chat_template)
        self._template_kwargs = dict(tokenizer.special_tokens_map)  # what apply_chat_template passes
        self._splitter, self._added = _added_token_splitter(tokenizer)
        self._added_pieces = {
            content: _Piece([token_id], spans=[(0, len(content))]) for content, token_id in self._added.items()
        }

    def render(self, rows: Sequence[TrainingRow]) -> list[RenderedRow]:
        """Each row's tokens and target-only mask, in order.

        Raises:
            RenderError: a row's mask cannot be matched to its assistant turns (names the trace).
        """
        self._prepare_backend()
        rendered: list[RenderedRow] = []
        # A chunk's pieces are tokenized (in Rust, without the GIL) while the previous chunk's rows
        # are put together and the next chunk is rendered (Python): both cores stay busy.
        with ThreadPoolExecutor(1, thread_name_prefix="tokenize") as tokenizer_thread:
            previous: _Chunk | None = None
            for start in range(0, len(rows), CHUNK_ROWS):
                chunk = self._rendered_chunk(rows[start : start + CHUNK_ROWS], tokenizer_thread)
                if previous is not None:
                    rendered += self._rows(previous)
                previous = chunk
            if previous is not None:
                rendered += self._rows(previous)
        return rendered

    def _text(self, row: TrainingRow) -> tuple[str, list[tuple[int, int]]]:
        """The row's rendered text and its generation spans (characters), rendered once."""
        messages, tools = self.chat.template_messages(row), self.chat.tools(row)
        return render_with_spans(self._template, messages, tools or None, **self._template_kwargs)

    def _split(self, text: str) -> list[str]:
        if self._splitter is None:
            return [text]
        return [piece for piece in self._splitter.split(text) if piece]

    def _tokenized(self, chunk: _Chunk) -> dict[str, _Piece]:
        """The chunk's pieces' tokens: added tokens by id, every other piece from its encoding."""
        found = dict(self._added_pieces)
        for text, encoding in zip(chunk.encoded, chunk.encodings.result(), strict=True):
            found[text] = _Piece(encoding.ids, encoding)
        return found

    def _encode(self, texts: list[str]) -> list[Any]:
        """The encodings (ids, offsets) of the texts, in one call of the fast tokenizer."""
        return self.tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False) if texts else []

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

    def _rendered_chunk(self, rows: Sequence[TrainingRow], tokenizer_thread: ThreadPoolExecutor) -> _Chunk:
        """The rows rendered and cut into pieces; the distinct pieces handed to the tokenizer thread."""
        texts = [self._text(row) for row in rows]
        split = [self._split(text) for text, _ in texts]
        distinct = dict.fromkeys(piece for pieces in split for piece in pieces)
        encoded = [piece for piece in distinct if piece not in self._added_pieces]
        return _Chunk(rows, texts, split, encoded, tokenizer_thread.submit(self._encode, encoded))

    def _rows(self, chunk: _Chunk) -> list[RenderedRow]:
        tokenized = self._tokenized(chunk)
        return [
            self._row(row, text, spans, [tokenized[piece] for piece in pieces], pieces)
            for row, (text, spans), pieces in zip(chunk.rows, chunk.texts, chunk.split, strict=True)
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


def render_rows(
    tokenizer: Any, chat_template: str, rows: Sequence[TrainingRow], chat: ChatDicts | None = None
) -> list[RenderedRow]:
    """`[render_row(tokenizer, chat_template, row) for row in rows]`, rendered and tokenized in batches
    (`chat`: the build's converted messages, to share with what writes the rows).

    Raises:
        RenderError: a row's mask cannot be matched to its assistant turns (names the trace).
    """
    if not getattr(tokenizer, "is_fast", False):  # a Python tokenizer has no batched Rust encoder
        return [render_row(tokenizer, chat_template, row) for row in rows]
    return BatchRenderer(tokenizer, chat_template, chat).render(rows)
