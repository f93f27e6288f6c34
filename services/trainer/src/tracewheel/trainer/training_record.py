"""What an adapter was trained from, saved beside its weights (`training.json` in the adapter folder).

An adapter folder then says on its own which base model, dataset build and recipe made it, so an
export or a push writes its model card from the folder (export.py) wherever the folder is.
Adapters saved before the record existed have none: their card says "not recorded".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tracewheel.core.errors import InvalidArgument
from tracewheel.core.files import write_text_atomically

TRAINING_RECORD = "training.json"


class TrainingRecord(BaseModel):
    """One training run's provenance and figures.

    Attributes:
        base_model: the base model folder that was trained (as the trainer saw it).
        dataset_version: the dataset build's version ("" when its manifest names none).
        dataset_path: the dataset folder.
        recipe: the device-resolved recipe (`Recipe.model_dump`), every option with its value.
        global_step: optimizer steps taken.
        train_loss: the mean training loss TRL reports.
        eval_loss: the loss on the eval split at the end; None when not computed.
        train_rows: rows trained on.
        init_adapter: the adapter a warm start began from; "" for the base model.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_model: str
    dataset_version: str = ""
    dataset_path: str = ""
    recipe: dict[str, Any]
    global_step: int = 0
    train_loss: float | None = None
    eval_loss: float | None = None
    train_rows: int = 0
    init_adapter: str = ""


def write_training_record(folder: Path, record: TrainingRecord) -> None:
    """Writes `folder/training.json` atomically.

    Raises:
        OSError: the folder cannot be written.
    """
    write_text_atomically(folder / TRAINING_RECORD, record.model_dump_json(indent=2) + "\n")


def read_training_record(folder: Path) -> TrainingRecord | None:
    """The record in an adapter folder; None when the folder has none.

    Raises:
        InvalidArgument: the file is there but is not a training record (names the file).
    """
    path = folder / TRAINING_RECORD
    if not path.is_file():
        return None
    try:
        return TrainingRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise InvalidArgument(f"{path} is not a training record: {exc.errors(include_url=False)[0]['msg']}") from None
