"""The training recipe: LoRA/QLoRA SFT hyper-parameters, a settings class with a YAML source.

Every option is declared once, in `Recipe` (type, default, description). A recipe is read,
highest priority first, from: keyword arguments (`Recipe(...)`); the `TW_RECIPE_<OPTION>`
environment variables (`TW_RECIPE_LORA_R=8`), whose values are YAML like the file's
(`TW_RECIPE_TARGET_MODULES='[q_proj, v_proj]'`, `null`); the YAML file given to
`load_recipe(path)` (the trainer's `recipe_path`); the defaults declared here. The prefix is not
`TW_TRAINER_` because the service's settings loader refuses unknown `TW_TRAINER_*` variables; an
unknown `TW_RECIPE_*` is refused the same way.

Device-dependent options (`bf16`, `load_in_4bit`, `optim`, `gradient_checkpointing`) default to
None = "choose for the device": on CUDA bf16 + QLoRA 4-bit (bitsandbytes) + paged_adamw_8bit +
gradient checkpointing; on CPU fp32, no quantization, adamw_torch, no checkpointing (TRL's own
defaults assume a GPU). `Recipe.for_device(device)` resolves them; `qlora.require_device` refuses
what the machine cannot do (4-bit on the CPU).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from tracewheel.core.errors import InvalidArgument
from tracewheel.core.settings import setting_variables, unknown_variables

ENV_PREFIX = "TW_RECIPE_"
_recipe_file: ContextVar[Path | None] = ContextVar("recipe_file", default=None)
"""The YAML file `load_recipe` reads (pydantic-settings cannot take a file per instance)."""


class RecipeError(InvalidArgument):
    """The recipe file or a TW_RECIPE_* override is missing, unknown or invalid."""


class _YamlValuedEnvironment(EnvSettingsSource):
    """TW_RECIPE_* values read as YAML, like the file's: `[q_proj, v_proj]` is a list."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(str(exc)) from None


class _RecipeFile(YamlConfigSettingsSource):
    """The recipe's YAML file; a file that cannot be read, or holds no mapping, is a RecipeError."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except (OSError, yaml.YAMLError) as exc:
            raise RecipeError(f"cannot read recipe {file_path}: {exc}") from None
        if not isinstance(data, dict):
            raise RecipeError(f"recipe {file_path} must be a YAML mapping of option: value")
        return data


class Recipe(BaseSettings):
    """Every option of a training run. Defaults are sane for the embedded CPU stack."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True, env_parse_none_str="null")

    # --- LoRA ---
    lora_r: int = Field(default=16, ge=1, description="LoRA rank: adapter capacity and size.")
    lora_alpha: int = Field(default=32, ge=1, description="LoRA scaling numerator (effective scale alpha/r).")
    lora_dropout: float = Field(default=0.05, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: str | list[str] = Field(
        default="all-linear", description="Modules that get adapters: 'all-linear' or a list of module names."
    )
    # --- schedule ---
    num_train_epochs: float = Field(default=3.0, gt=0, description="Epochs over train.jsonl (ignored if max_steps>0).")
    warm_start_epochs: float | None = Field(
        default=None,
        gt=0,
        description="When an adapter this trainer made is deployed, start from it and train this many epochs "
        "instead of num_train_epochs (warm_start.py); None: every job starts from the base model.",
    )
    warm_start_learning_rate: float | None = Field(
        default=None,
        gt=0,
        description="Peak learning rate of a warm start (an adapter already fitted wants a gentler one); "
        "None: learning_rate.",
    )
    warm_start_rows: Literal["all", "new"] = Field(
        default="all",
        description="Rows a warm start trains on: 'all' the dataset's, or 'new' only those its init adapter was "
        "not trained on, plus warm_start_replay of the others (trained_rows.py).",
    )
    warm_start_replay: int = Field(
        default=0,
        ge=0,
        description="With warm_start_rows='new': how many already-trained rows (a seeded sample) are trained again "
        "beside the new ones, so the old ones are rehearsed.",
    )
    max_steps: int = Field(default=-1, description="Optimizer steps to run; -1 means use num_train_epochs.")
    learning_rate: float = Field(default=2e-4, gt=0, description="Peak learning rate (LoRA wants ~1e-4..3e-4).")
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1, description="Fraction of steps of linear warmup.")
    # Batch 1 x 4 accumulation: on CPU the vocab projection makes a padded batch of 4 slower per
    # token and 3x the peak memory (bench/train.py); on a GPU raise the batch, lower accumulation.
    per_device_train_batch_size: int = Field(default=1, ge=1, description="Rows per forward pass.")
    gradient_accumulation_steps: int = Field(default=4, ge=1, description="Forward passes per optimizer step.")
    decision_weight: float = Field(
        default=1.0,
        gt=0,
        description="Loss weight of each assistant turn's decision token (first token after its think block: "
        "a tool call or the answer) on pre-tokenized rows; 1 is the plain token mean (loss.py).",
    )
    answer_weight: float | None = Field(
        default=None,
        gt=0,
        description="Loss weight of the decision to answer (a turn without a tool call); None: decision_weight.",
    )
    # --- checkpoints, eval, logs ---
    save_steps: int = Field(default=50, ge=1, description="Checkpoint every N optimizer steps (resume point).")
    save_total_limit: int = Field(default=2, ge=1, description="Checkpoints kept on disk (oldest deleted).")
    eval: bool = Field(default=True, description="Compute eval loss on eval.jsonl (at eval_steps and at the end).")
    eval_steps: int | None = Field(default=None, ge=1, description="Evaluate every N steps; None: only at the end.")
    logging_steps: int = Field(default=1, ge=1, description="Log loss/throughput every N steps.")
    seed: int = Field(default=42, description="Seed for data order, LoRA init and dropout.")
    chat_template: str | None = Field(
        default=None,
        description="Training template with {% generation %} markers: null for the base model family's (as the "
        "dataset and inference resolve it; else the tokenizer's own), a name shipped in tracewheel.core.chat, or "
        "a path to a .jinja file. A dataset rendered with another template is refused (base_model.py). The "
        "length of the rows is the dataset's (TW_DATASET_MAX_LENGTH, in its manifest), not a recipe option.",
    )
    export_merged: bool = Field(
        default=False,
        description="After a job succeeds (evaluated, when evaluation is configured), merge its adapter into the "
        "base model as a 16-bit (bf16) safetensors folder with the tokenizer, the serving chat template and a model "
        "card, in <job dir>/merged/: what `vllm serve` takes (export.py).",
    )
    # --- device-dependent (None = chosen by for_device) ---
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto picks cuda when available.")
    bf16: bool | None = Field(default=None, description="bf16 mixed precision; default: True on CUDA, False on CPU.")
    load_in_4bit: bool | None = Field(
        default=None, description="QLoRA: load the base model in 4-bit NF4 (bitsandbytes); default: CUDA only."
    )
    optim: str | None = Field(
        default=None, description="Optimizer; default: paged_adamw_8bit on CUDA, adamw_torch on CPU."
    )
    gradient_checkpointing: bool | None = Field(
        default=None, description="Recompute activations to save memory; default: True on CUDA, False on CPU."
    )

    def for_device(self, cuda_available: bool) -> Recipe:
        """This recipe with `device` and every None device option resolved."""
        device = self.device if self.device != "auto" else ("cuda" if cuda_available else "cpu")
        on_gpu = device == "cuda"
        return self.model_copy(
            update={
                "device": device,
                "bf16": on_gpu if self.bf16 is None else self.bf16,
                "load_in_4bit": on_gpu if self.load_in_4bit is None else self.load_in_4bit,
                "optim": ("paged_adamw_8bit" if on_gpu else "adamw_torch") if self.optim is None else self.optim,
                "gradient_checkpointing": on_gpu
                if self.gradient_checkpointing is None
                else self.gradient_checkpointing,
            }
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then TW_RECIPE_* variables, then the recipe file, then the defaults."""
        return init_settings, _YamlValuedEnvironment(settings_cls), _RecipeFile(settings_cls, _recipe_file.get())


def load_recipe(path: Path | None = None) -> Recipe:
    """The recipe: TW_RECIPE_* variables over the YAML file at `path` (if any) over the defaults.

    Raises:
        RecipeError: the file is missing or not a YAML mapping, or an option is unknown or invalid.
    """
    unknown = unknown_variables(Recipe, os.environ)
    if unknown:
        known = ", ".join(setting_variables(Recipe))
        raise RecipeError(f"unknown recipe override {', '.join(unknown)}; known: {known}")
    if path is not None and not path.is_file():
        raise RecipeError(f"cannot read recipe {path}: no such file")
    token = _recipe_file.set(path)
    try:
        return Recipe()
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise RecipeError("invalid recipe: " + "; ".join(problems)) from None
    except SettingsError as exc:
        raise RecipeError(f"invalid recipe: {exc}") from None
    finally:
        _recipe_file.reset(token)
