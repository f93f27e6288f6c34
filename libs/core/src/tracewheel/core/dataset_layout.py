"""The dataset folder: what the dataset service writes and the trainer reads, spelled out once.

Layout of `<artifacts_dir>/<version>/`:

| path | what |
|---|---|
| `hf/` | `datasets.DatasetDict` (`train`, `eval`) from `save_to_disk`: pre-tokenized for TRL |
| `train.parquet`, `eval.parquet` | the same columns |
| `train.jsonl`, `eval.jsonl` | TRL conversational rows `{messages, tools}` (`tools` and arguments as JSON strings) |
| `manifest.json` | what was built from what (`Manifest`) |

Columns: `trace_id`; `messages` and `tools` as JSON strings (Arrow structs would merge the keys
of every row's mixed-type dicts); `targets` (indices of the trained assistant messages);
`input_ids`; `assistant_masks` (1 on target turns only) and `labels` (`input_ids`, -100 off the
mask). A build with packed rows (a windowed trace's per-turn rows as one prefix tree) adds
`position_ids` and `parents` to every row (a row that is not packed: 0..n-1 and -1..n-2). A
folder made by hand may hold only `manifest.json` and `train.jsonl` (optional `eval.jsonl`).

This module holds names and the manifest only; reading the tables (`datasets`, pyarrow) stays
in the services.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from tracewheel.core.errors import InvalidArgument
from tracewheel.core.files import write_text_atomically

MANIFEST_FILE = "manifest.json"
HF_DIR = "hf"
"""The `save_to_disk` DatasetDict, one shard per split (an empty split saved as 0 shards cannot be loaded)."""
SPLITS = ("train", "eval")

TRACE_ID = "trace_id"
MESSAGES = "messages"
TOOLS = "tools"
TARGETS = "targets"
INPUT_IDS = "input_ids"
ASSISTANT_MASKS = "assistant_masks"
LABELS = "labels"
POSITION_IDS = "position_ids"
PARENTS = "parents"
TREE_COLUMNS = (POSITION_IDS, PARENTS)
"""The columns of packed prefix-tree rows, present on every row of a build that packs any."""
IGNORE_INDEX = -100
"""The label of a token that is not trained (the loss ignores it, as in transformers)."""


def parquet_file(split: str) -> str:
    """The parquet file of a split (`train.parquet`)."""
    return f"{split}.parquet"


def jsonl_file(split: str) -> str:
    """The JSONL file of a split (`train.jsonl`)."""
    return f"{split}.jsonl"


class ManifestError(InvalidArgument):
    """A dataset folder's manifest is missing, not JSON, or not a valid manifest."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManifestTrace(_Strict):
    """A trace the build took, at which revision, and the split its rows went to."""

    id: str
    revision: int
    split: str


class SplitCounts(_Strict):
    train: int = 0
    eval: int = 0


class TokenCounts(_Strict):
    total: int = 0
    supervised: int = 0
    """Tokens with a label (not IGNORE_INDEX)."""


class DroppedRow(_Strict):
    """A row left out of the build, and why (e.g. longer than max_length)."""

    trace_id: str
    targets: list[int]
    tokens: int
    reason: str


class Manifest(_Strict):
    """`manifest.json`: what a dataset folder was built from, with which settings, and its counts.

    The dataset service writes every field; a folder made by hand may leave any out (each has a
    "not recorded" default: the trainer then takes the version and base model from its request
    and settings). Unknown fields are refused.
    """

    version: str = ""
    built_at: datetime | None = None
    selection_sha256: str = ""
    """Hash of the (trace id, revision) set built (`store_schema.selection_sha256`)."""
    base_model: str = ""
    """The base model's name (a folder under the trainer's models_dir) or path."""
    template_sha256: str = ""
    """sha256 of the training chat template's source; "" when not recorded."""
    tokenizer_sha256: str = ""
    """`tracewheel.core.base_model.tokenizer_sha256` of the tokenizer the rows were tokenized with;
    "" when not recorded. The trainer refuses the dataset for a tokenizer with another one."""
    max_length: int | None = None
    """The longest row kept, in tokens; the trainer trains rows up to this length."""
    eval_ratio: float | None = None
    split_seed: str = ""
    reasoning: bool = True
    """Assistant reasoning kept in the rows."""
    traces: list[ManifestTrace] = Field(default_factory=list)
    rows: SplitCounts = SplitCounts()
    tokens: TokenCounts = TokenCounts()
    tool_calls: dict[str, int] = Field(default_factory=dict)
    """Calls per tool name in the trained assistant turns."""
    duplicates_removed: int = 0
    dropped: list[DroppedRow] = Field(default_factory=list)

    @field_serializer("built_at")
    def _iso(self, built_at: datetime | None) -> str | None:
        return None if built_at is None else built_at.isoformat()  # `+00:00`, as the files have always said


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Writes `folder/manifest.json` atomically (2-space JSON, UTF-8); returns its path.

    Raises:
        OSError: the folder cannot be written.
    """
    path = folder / MANIFEST_FILE
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    write_text_atomically(path, text)
    return path


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the dataset folder `folder`.

    Raises:
        ManifestError: the file is missing, unreadable, not JSON, or not a valid manifest (names
            the file, each wrong field and what is wrong with it).
    """
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path} is missing; is {folder} a built dataset?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise ManifestError(f"{path} cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path} must hold a JSON object, not {type(data).__name__}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}" for error in exc.errors()
        )
        raise ManifestError(f"{path} is not a valid manifest: {problems}") from None
