"""How a build turns traces into rows: the options of `build.DatasetBuilder`, declared once.

The dataset service's settings inherit them (`config.DatasetSettings`), so each option is also
the environment variable `TW_DATASET_<NAME>`. They live beside `build.py` rather than in it so
that reading the settings does not import the build's dependencies (`datasets` takes seconds).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BuildOptions(BaseModel):
    """How a build turns traces into rows (`build.BuildConfig` adds the model and template)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_length: int | None = Field(
        default=None,
        ge=16,
        description="Rows longer than this many tokens are dropped (and reported in the manifest); the trainer "
        "trains up to the same length. None: the base model's context (config.json max_position_embeddings), at "
        "most 32768, or 8192 when it is not readable (tracewheel.core.base_model.default_max_length).",
    )
    eval_ratio: float = Field(default=0.1, ge=0.0, le=1.0, description="Share of trace ids sent to the eval split.")
    split_seed: str = Field(default="", description="Seed of the train/eval split by trace id.")
    reasoning: bool = Field(
        default=True,
        description="Train on the assistant turns' reasoning; false leaves it out of the rows (traces keep it, "
        "unroll.without_reasoning): a small model then learns to act without thinking first (docs/dataset.md).",
    )
