"""The base model's tokenizer, loaded on first use (the service starts without reading it)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

from tracewheel.core.errors import FailedPrecondition, Unavailable


class LazyTokenizer:
    """Forwards to `AutoTokenizer.from_pretrained(base_model)`, loaded once on first attribute access."""

    def __init__(self, base_model: str) -> None:
        self.base_model = base_model
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """The tokenizer.

        Raises:
            FailedPrecondition: no base model is configured (TW_DATASET_BASE_MODEL).
            Unavailable: its folder does not exist yet (inference writes the bundled model's on its
                first start); retrying once it does succeeds.
        """
        with self._lock:
            if self._tokenizer is None:
                if not self.base_model:
                    raise FailedPrecondition(
                        "no base model to tokenize with; set TW_DATASET_BASE_MODEL to its directory"
                    )
                if not Path(self.base_model).is_dir():
                    # transformers would read the path as a hub repo id and fail with a confusing message
                    raise Unavailable(
                        f"the base model {self.base_model} is not there yet (TW_DATASET_BASE_MODEL): on a fresh "
                        "home the inference service writes it when it first starts; start it and retry"
                    )
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self.base_model)
                # transformers leaves ~300k long-lived objects that every full collection would walk
                # again (a 150 ms pause in a list request): keep them out of the collector's way
                gc.freeze()
            return self._tokenizer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.load(), name)
