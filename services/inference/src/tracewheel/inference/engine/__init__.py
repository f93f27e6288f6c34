"""The embedded CPU generation engine: batched decoding, prefix caching, per-request adapters."""

from tracewheel.inference.engine.core import Engine, GenerationHandle
from tracewheel.inference.engine.sampling import SamplingParams

__all__ = ["Engine", "GenerationHandle", "SamplingParams"]
