"""The CPU engine: one worker thread runs prefills and batched decode steps.

Scheduling: each loop iteration admits at most one waiting request (prefilled alone, with
prefix caching), then runs one decode step for every running request together. Running
requests therefore keep streaming while a new one is admitted, and N concurrent requests
share each forward pass (batched decoding with left padding), which is where the throughput
gain over one-at-a-time comes from on a CPU.

Rows may use different LoRA adapters: with a PEFT model, `adapter_names` routes each row of
the batch through its own adapter (PEFT's mixed-batch inference). A forward whose rows all use
one adapter runs on that adapter's merged weights instead (engine/merging.py), unless
`merge_adapters` is off.

Speculative decoding (`speculative_tokens` > 0): a greedy row feeds its last token plus up to
that many drafts looked up in its own context (engine/speculative.py), and keeps each draft
the model agrees with, so one decode step can add several tokens to a row. Rows of one step
are as wide as the longest draft; the columns a row did not use (fewer drafts, or drafts
rejected) stay in the KV cache as holes, masked out in every later step, and positions are
given per row, so the holes change nothing that is computed. Rows that sample (temperature
> 0) take no drafts: their output is what it would be without speculation.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache

from tracewheel.core.errors import ResourceExhausted
from tracewheel.core.metrics import INFERENCE_QUEUE_DEPTH, INFERENCE_RUNNING, INFERENCE_TOKENS
from tracewheel.inference.engine.attention import use_gqa_attention
from tracewheel.inference.engine.batch import Batch
from tracewheel.inference.engine.kv import KV, cache_kv
from tracewheel.inference.engine.merging import BASE_ADAPTER, MergedWeights
from tracewheel.inference.engine.prefix_cache import PrefixCache
from tracewheel.inference.engine.sampling import SamplingParams, make_generator, sample_token
from tracewheel.inference.engine.speculative import PROMPT_LOOKUP_MAX, PROMPT_LOOKUP_MIN, propose

log = logging.getLogger(__name__)


@dataclass
class GenerationResult:
    finish_reason: str  # stop | length | cancelled | error
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    error: str = ""


# on_text(delta) for each piece of text; on_done(result) once at the end; what they return is ignored
TextCallback = Callable[[str], object]
DoneCallback = Callable[[GenerationResult], object]


@dataclass
class GenerationHandle:
    prompt_ids: list[int]
    params: SamplingParams
    adapter: str | None
    on_text: TextCallback
    on_done: DoneCallback
    cancelled: threading.Event = field(default_factory=threading.Event)
    # engine-side state
    out_ids: list[int] = field(default_factory=list)
    emitted: str = ""
    cached_tokens: int = 0
    generator: torch.Generator | None = None
    prompt_array: np.ndarray | None = None  # the prompt for draft lookups, made once

    def cancel(self) -> None:
        self.cancelled.set()


class Engine:
    """Serves generation requests from a worker thread. `submit` is thread-safe.

    The engine switches the model it is given to its grouped-query attention (engine/attention.py)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_batch: int = 8,
        prefix_cache: PrefixCache | None = None,
        stop_token_ids: set[int] | None = None,
        speculative_tokens: int = 0,
        prompt_lookup_max: int = PROMPT_LOOKUP_MAX,
        prompt_lookup_min: int = PROMPT_LOOKUP_MIN,
        merge_adapters: bool = True,
        max_waiting: int | None = None,
    ) -> None:
        if speculative_tokens < 0:
            raise ValueError(f"speculative_tokens must be 0 (off) or more, got {speculative_tokens}")
        if not 1 <= prompt_lookup_min <= prompt_lookup_max:
            raise ValueError(
                f"need 1 <= prompt_lookup_min <= prompt_lookup_max, got {prompt_lookup_min} and {prompt_lookup_max}"
            )
        use_gqa_attention(model)  # grouped heads without copies under the batch's mask (engine/attention.py)
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.max_waiting = max_waiting  # None: the queue is unbounded
        self.prefix_cache = prefix_cache
        self.stop_token_ids = stop_token_ids or {tokenizer.eos_token_id}
        self.context_length = int(getattr(model.config, "max_position_embeddings", 8192))
        self.speculative_tokens = speculative_tokens
        self.prompt_lookup = (prompt_lookup_max, prompt_lookup_min)
        self.drafted = self.accepted = 0  # speculation counters (tokens), for benchmarks and logs
        self.finished: Counter[str] = Counter()  # requests by finish reason
        self.lock = threading.RLock()  # held for each forward; adapter loading takes it too
        # single-adapter forwards on merged weights; reset under the lock before PEFT changes the model
        self.weights = MergedWeights() if merge_adapters else None
        self._inbox: queue.Queue[GenerationHandle] = queue.Queue()
        self._batch = Batch()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)

    def start(self) -> Engine:
        INFERENCE_QUEUE_DEPTH.set_function(lambda: self.waiting)
        INFERENCE_RUNNING.set_function(lambda: self.running)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def waiting(self) -> int:
        """Requests submitted and not yet admitted to the batch."""
        return self._inbox.qsize()

    @property
    def running(self) -> int:
        """Requests in the batch (decoding)."""
        return len(self._batch.rows)

    def submit(
        self,
        prompt_ids: list[int],
        params: SamplingParams,
        adapter: str | None,
        on_text: TextCallback,
        on_done: DoneCallback,
    ) -> GenerationHandle:
        """Queues a request; the callbacks run on the engine's thread.

        Raises: ResourceExhausted: `max_waiting` requests already wait for a place in the batch.
        """
        if self.max_waiting is not None and self.waiting >= self.max_waiting:
            raise ResourceExhausted(
                f"the engine is busy: {self.waiting} requests wait for it, the most it queues "
                f"(TW_INFERENCE_MAX_WAITING_REQUESTS={self.max_waiting}); retry shortly"
            )
        handle = GenerationHandle(prompt_ids, params, adapter, on_text, on_done, generator=make_generator(params.seed))
        self._inbox.put(handle)
        return handle

    # -- worker ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            handle = self._next_request()
            try:
                with self.lock, torch.inference_mode():
                    if handle is not None:
                        self._admit(handle)
                    if self._batch.rows:
                        self._decode_step()
            except Exception as exc:  # a failed forward ends the requests involved, not the engine
                log.exception("engine step failed")
                for row in [*self._batch.rows, *([handle] if handle else [])]:
                    self._finish(row, "error", error=str(exc))
                self._batch = Batch()

    def _next_request(self) -> GenerationHandle | None:
        """A waiting request, if the batch has room (waits briefly only when idle)."""
        if len(self._batch.rows) >= self.max_batch:
            return None
        try:
            return self._inbox.get(timeout=0.05) if not self._batch.rows else self._inbox.get_nowait()
        except queue.Empty:
            return None

    def _forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Cache,
        adapters: list[str | None],
        keep: int = 1,
    ) -> tuple[torch.Tensor, KV]:
        """Logits [rows, keep, vocab] of each row's last `keep` positions; `cache` is extended in
        place with the new tokens."""
        kwargs: dict[str, Any] = {}
        if getattr(self.model, "peft_config", None):
            if self.weights is not None:
                kwargs = self.weights.forward_kwargs(self.model, adapters)
            else:
                kwargs["adapter_names"] = [a or BASE_ADAPTER for a in adapters]
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=keep,  # a prefill samples one token: it skips the vocab projection of its prompt
            **kwargs,
        )
        return out.logits, cache_kv(out.past_key_values)

    def _admit(self, handle: GenerationHandle) -> None:
        if handle.cancelled.is_set():
            self._finish(handle, "cancelled")
            return
        ids = handle.prompt_ids
        cached, kv = (0, None)
        if self.prefix_cache is not None:
            cached, kv = self.prefix_cache.lookup(handle.adapter, ids)
        handle.cached_tokens = cached
        tail = torch.tensor([ids[cached:]])
        logits, full_kv = self._forward(
            tail,
            torch.ones(1, len(ids), dtype=torch.long),
            torch.arange(cached, len(ids)).unsqueeze(0),
            DynamicCache(ddp_cache_data=kv) if kv else DynamicCache(),  # fresh tensors: the prefix cache keeps them
            [handle.adapter],
        )
        if self.prefix_cache is not None:
            self.prefix_cache.insert(handle.adapter, ids, full_kv)
        if self._accept(handle, logits[0, -1]):
            self._batch.add(handle, full_kv)

    def _decode_step(self) -> None:
        """One forward for every running row: its last token, plus its drafts when speculating."""
        rows = self._batch.rows
        drafts = [self._drafts(row) for row in rows]
        width = 1 + max(len(d) for d in drafts)
        inputs = [[row.out_ids[-1], *d, *[0] * (width - 1 - len(d))] for row, d in zip(rows, drafts, strict=True)]
        input_ids = torch.tensor(inputs)  # the padding after short drafts is masked out below
        start = torch.tensor([[len(row.prompt_ids) + len(row.out_ids) - 1] for row in rows])
        used = torch.tensor([[int(j <= len(d)) for j in range(width)] for d in drafts])
        mask = torch.cat([self._batch.mask, used], dim=1)
        assert self._batch.cache is not None
        logits, _ = self._forward(
            input_ids, mask, start + torch.arange(width), self._batch.cache, [r.adapter for r in rows], keep=width
        )
        keep = []
        for i, (row, row_drafts) in enumerate(zip(rows, drafts, strict=True)):
            filled, alive = self._verify(row, row_drafts, logits[i])
            mask[i, mask.shape[1] - width + filled :] = 0  # rejected drafts stay in the cache, masked out
            if alive:
                keep.append(i)
        self._batch.mask = mask
        self._batch.keep(keep)

    def _drafts(self, row: GenerationHandle) -> list[int]:
        """Draft tokens for a greedy row (none when not speculating, or when nothing matches)."""
        room = min(self.speculative_tokens, self._limit(row) - len(row.out_ids) - 1)  # the last token is the model's
        if room < 1 or not row.params.greedy:
            return []
        if row.prompt_array is None:
            row.prompt_array = np.asarray(row.prompt_ids, dtype=np.int64)
        context = np.concatenate([row.prompt_array, np.asarray(row.out_ids, dtype=np.int64)])
        drafts = propose(context, room, *self.prompt_lookup)
        self.drafted += len(drafts)
        return drafts

    def _verify(self, row: GenerationHandle, drafts: list[int], logits: torch.Tensor) -> tuple[int, bool]:
        """Takes the row's tokens from one step's logits [width, vocab]: the model's own token at
        each position, for as long as it equals the draft fed there. Returns how many of the
        step's input columns hold tokens of the output (the last token and the accepted drafts)
        and whether the row goes on."""
        fed = 0
        while True:
            if not self._accept(row, logits[fed]):
                return fed + 1, False
            if fed == len(drafts) or row.out_ids[-1] != drafts[fed]:
                return fed + 1, True
            fed += 1
            self.accepted += 1

    def _accept(self, handle: GenerationHandle, logits: torch.Tensor) -> bool:
        """Samples one token for a row; returns False when the row is finished."""
        if handle.cancelled.is_set():
            self._finish(handle, "cancelled")
            return False
        token = sample_token(logits, handle.params, handle.generator)
        if token in self.stop_token_ids:
            self._flush(handle, final=True)
            self._finish(handle, "stop")
            return False
        handle.out_ids.append(token)
        INFERENCE_TOKENS.inc()
        if self._flush(handle, final=False):
            self._finish(handle, "stop")
            return False
        if len(handle.out_ids) >= self._limit(handle):
            self._flush(handle, final=True)
            self._finish(handle, "length")
            return False
        return True

    def _limit(self, handle: GenerationHandle) -> int:
        """The most output tokens a request may have."""
        return min(handle.params.max_tokens, self.context_length - len(handle.prompt_ids))

    def _flush(self, handle: GenerationHandle, final: bool) -> bool:
        """Emits new text; returns True when a stop string was reached (text cut before it)."""
        text = self.tokenizer.decode(handle.out_ids, skip_special_tokens=False)
        if text.endswith("\ufffd") and not final:
            return False  # an incomplete UTF-8 sequence: wait for the next token
        for stop in handle.params.stop:
            at = text.find(stop, max(0, len(handle.emitted) - len(stop)))
            if at != -1:
                if at > len(handle.emitted):
                    handle.on_text(text[len(handle.emitted) : at])
                handle.emitted = text[:at]
                return True
        # hold back a tail that could be the start of a stop string
        hold = max((len(s) - 1 for s in handle.params.stop), default=0) if not final else 0
        ready = text[: len(text) - hold] if hold else text
        if len(ready) > len(handle.emitted):
            handle.on_text(ready[len(handle.emitted) :])
            handle.emitted = ready
        return False

    def _finish(self, handle: GenerationHandle, reason: str, error: str = "") -> None:
        self.finished[reason] += 1
        handle.on_done(
            GenerationResult(reason, len(handle.prompt_ids), len(handle.out_ids), handle.cached_tokens, error)
        )

    def generate_blocking(
        self, prompt_ids: list[int], params: SamplingParams, adapter: str | None = None, timeout_s: float = 600.0
    ) -> tuple[str, GenerationResult]:
        """Convenience for scripts and benchmarks: waits for the whole text."""
        pieces: list[str] = []
        done = threading.Event()
        result: list[GenerationResult] = []

        def finish(r: GenerationResult) -> None:
            result.append(r)
            done.set()

        self.submit(prompt_ids, params, adapter, pieces.append, finish)
        if not done.wait(timeout_s):
            raise TimeoutError(f"generation did not finish within {timeout_s} s")
        return "".join(pieces), result[0]
