"""TRL's SFTTrainer for one run: the base model (quantized for QLoRA), a new or warm-started LoRA
adapter, and the SFT config a device-resolved recipe gives (train.py runs it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tracewheel.trainer.base_model import load_tokenizer, training_max_length
from tracewheel.trainer.data import DatasetError, TrainingData
from tracewheel.trainer.qlora import lora_config, quantization_config
from tracewheel.trainer.recipe import Recipe

CHECKPOINTS = "checkpoints"


def _load_model_and_tokenizer(base_model_dir: Path, recipe: Recipe, tokenizer: Any = None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(base_model_dir, recipe)
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if recipe.bf16 else torch.float32}
    if recipe.load_in_4bit:
        kwargs["quantization_config"] = quantization_config(recipe)
        if "LOCAL_RANK" in os.environ:  # under torchrun each process quantizes its copy onto its own GPU
            kwargs["device_map"] = {"": int(os.environ["LOCAL_RANK"])}
    return AutoModelForCausalLM.from_pretrained(base_model_dir, **kwargs), tokenizer


def build_sft_config(
    recipe: Recipe,
    output_dir: Path,
    has_eval: bool,
    pretokenized: bool = False,
    prefix_tree: bool = False,
    max_length: int | None = None,
) -> Any:
    """TRL's SFTConfig for a device-resolved recipe (see Recipe.for_device).

    Conversational rows get TRL's assistant_only_loss; pre-tokenized rows bring their own labels;
    prefix-tree rows keep their `position_ids` and `parents` columns for the collator. Rows are
    cut at `max_length` tokens (None: never; pre-tokenized rows longer than it were dropped before).
    """
    from trl import SFTConfig

    evaluate_during = recipe.eval and has_eval and recipe.eval_steps is not None
    return SFTConfig(
        output_dir=str(output_dir / CHECKPOINTS),
        num_train_epochs=recipe.num_train_epochs,
        max_steps=recipe.max_steps,
        learning_rate=recipe.learning_rate,
        warmup_steps=recipe.warmup_ratio,  # transformers 5: a float < 1 is a ratio of total steps
        per_device_train_batch_size=recipe.per_device_train_batch_size,
        per_device_eval_batch_size=recipe.per_device_train_batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        max_length=max_length,
        assistant_only_loss=not pretokenized,
        remove_unused_columns=not prefix_tree,
        save_strategy="steps",
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        eval_strategy="steps" if evaluate_during else "no",
        eval_steps=recipe.eval_steps if evaluate_during else None,
        logging_steps=recipe.logging_steps,
        seed=recipe.seed,
        data_seed=recipe.seed,
        use_cpu=recipe.device == "cpu",
        bf16=bool(recipe.bf16),
        activation_checkpointing=bool(recipe.gradient_checkpointing),  # transformers 5 name
        optim=recipe.optim or "adamw_torch",
        include_num_input_tokens_seen="non_padding",
        report_to="none",  # tensorboard is added as an explicit callback writing to output_dir/tensorboard
        dataset_num_proc=None,
        disable_tqdm=True,
    )


def _warm_adapter(model: Any, init_adapter: Path, recipe: Recipe) -> Any:
    """The base model with `init_adapter`'s weights as a trainable LoRA adapter: its own shape (rank,
    targets), the recipe's dropout."""
    from peft import LoraConfig, PeftModel

    config = LoraConfig.from_pretrained(str(init_adapter))
    config.lora_dropout = recipe.lora_dropout
    return PeftModel.from_pretrained(model, str(init_adapter), config=config, is_trainable=True)


def _trainer_extras(data: TrainingData, recipe: Recipe, tokenizer: Any) -> dict[str, Any]:
    """The trainer's keyword arguments the rows' kind asks for: loss weights, a prefix-tree collator."""
    from tracewheel.trainer.prefix_tree import PrefixTreeCollator

    # pre-tokenized rows (the dataset service's): labelled positions only, weighted decisions (loss.py)
    weights = {
        "decision_weight": recipe.decision_weight,
        "answer_weight": recipe.answer_weight,
    }
    extra: dict[str, Any] = weights if data.pretokenized else {}
    if data.prefix_tree:
        extra["data_collator"] = PrefixTreeCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    return extra


def build_trainer(
    data: TrainingData,
    base_model_dir: Path,
    output_dir: Path,
    recipe: Recipe,
    callbacks: list[Any],
    init_adapter: Path | None = None,
    *,
    tokenizer: Any = None,
) -> Any:
    """An SFTTrainer with a LoRA adapter on the base model (tokenizes the data): a new one, or
    `init_adapter`'s weights carried on (a warm start, warm_start.py). Rows are trained up to the
    dataset's max_length (`base_model.training_max_length`); `tokenizer` is one `load_tokenizer` made.

    Raises:
        ChatTemplateError: the chat template cannot mask assistant tokens.
        DatasetError: a row renders with no assistant tokens.
    """
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    from tracewheel.trainer.loss import DecisionWeightedSFTTrainer

    model, tokenizer = _load_model_and_tokenizer(base_model_dir, recipe, tokenizer)
    if init_adapter is not None:
        model = _warm_adapter(model, init_adapter, recipe)
    lora = None if init_adapter is not None else lora_config(recipe)
    use_eval = recipe.eval and data.eval is not None
    extra = _trainer_extras(data, recipe, tokenizer)
    max_length = training_max_length(data.manifest, base_model_dir)
    try:
        trainer = (DecisionWeightedSFTTrainer if data.pretokenized else SFTTrainer)(
            model=model,
            args=build_sft_config(recipe, output_dir, use_eval, data.pretokenized, data.prefix_tree, max_length),
            train_dataset=data.train,
            eval_dataset=data.eval if use_eval else None,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=callbacks,
            **extra,
        )
    except RuntimeError as exc:
        if "no assistant tokens" in str(exc):
            raise DatasetError(f"a row renders with no assistant tokens under the training template: {exc}") from None
        raise
    # with tqdm off, transformers prints every log dict to stdout; progress goes to our callback instead
    trainer.remove_callback(PrinterCallback)
    return trainer
