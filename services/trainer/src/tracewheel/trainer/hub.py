"""Pushes to the Hugging Face Hub (domain: no grpc/nats): a model folder (an adapter or a merged
export, export.py) or a dataset build as a TRL-ready dataset, with huggingface_hub's `HfApi`:
`create_repo` (private when asked; an existing repository is kept) then `upload_folder`, one
commit of the whole folder.

Everything that can be checked here is checked before the first request: the repository id,
the token, the folder. The dataset is staged in a temporary folder first (its rows, validated as
the trainer reads them, the manifest and a card), so a build that cannot be read is not half
pushed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tracewheel.core.dataset_layout import MANIFEST_FILE, SPLITS, jsonl_file, read_manifest
from tracewheel.core.errors import InvalidArgument, Unavailable
from tracewheel.trainer.cards import dataset_card
from tracewheel.trainer.data import read_rows

HF_TOKEN = "HF_TOKEN"  # a Hub token with write access; the only credential read (a saved login is not)
HF_ENDPOINT = "HF_ENDPOINT"  # the Hub's URL (huggingface_hub's own variable), read at each push, not at import
DATA_DIR = "data"  # where a pushed dataset's split files go in its repository

RepoType = Literal["model", "dataset"]


class HubError(InvalidArgument):
    """A push cannot start: a malformed repository id, no token, or nothing to push."""


class HubRequestFailed(Unavailable):
    """The Hub refused a request or could not be reached; the message names the status and the Hub's words."""


@dataclass(frozen=True)
class HubTarget:
    """Where a push goes. Attributes: repo_id (ORG/NAME), repo_type, private (for a new
    repository), token, endpoint (None: huggingface_hub's default)."""

    repo_id: str
    repo_type: RepoType
    private: bool
    token: str
    endpoint: str | None = None

    def url(self) -> str:
        prefix = "datasets/" if self.repo_type == "dataset" else ""
        return f"{(self.endpoint or 'https://huggingface.co').rstrip('/')}/{prefix}{self.repo_id}"


def check_repo_id(repo_id: str) -> str:
    """`repo_id` when it is a Hub repository id ORG/NAME.

    Raises:
        HubError: it is not; the message gives the form.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    form = "ORG/NAME: letters, digits, '-', '_' and '.', no '--' or '..', at most 96 characters a part"
    if repo_id.count("/") != 1:
        raise HubError(f"--repo {repo_id!r} is not a Hub repository id; give {form}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise HubError(f"--repo {repo_id!r} is not a Hub repository id; give {form}") from None
    return repo_id


def hub_target(
    repo_id: str, repo_type: RepoType, private: bool = False, environ: Mapping[str, str] = os.environ
) -> HubTarget:
    """The push target, checked: the repository id and the token from HF_TOKEN (HF_ENDPOINT, when
    set, points at another Hub).

    Raises:
        HubError: the id is malformed or HF_TOKEN is not set.
    """
    check_repo_id(repo_id)
    token = environ.get(HF_TOKEN, "").strip()
    if not token:
        raise HubError(f"no Hugging Face token: set {HF_TOKEN} to a token with write access to {repo_id}")
    return HubTarget(repo_id, repo_type, private, token, environ.get(HF_ENDPOINT) or None)


def push_folder(folder: Path, target: HubTarget, commit_message: str) -> str:
    """Creates the repository (if new) and uploads every file of `folder` in one commit; returns
    the commit's URL.

    Raises:
        HubRequestFailed: the Hub refused a request (bad token, no right to the namespace) or is
            unreachable.
    """
    import httpx
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=target.endpoint, token=target.token)
    try:
        # not private: the Hub's default (public unless the organization's default is private)
        private = True if target.private else None
        api.create_repo(target.repo_id, repo_type=target.repo_type, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=target.repo_id, folder_path=folder, repo_type=target.repo_type, commit_message=commit_message
        )
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        detail = exc.server_message or str(exc).splitlines()[0]
        raise HubRequestFailed(f"the Hub at {target.url()} answered {status}: {detail}") from None
    except httpx.HTTPError as exc:
        raise HubRequestFailed(f"the Hub at {target.url()} could not be reached: {exc}") from None
    return commit.commit_url


def stage_dataset(dataset_dir: Path, into: Path) -> dict[str, str]:
    """Writes the build at `dataset_dir` into `into` as the Hub dataset: `data/<split>.jsonl`
    (`{messages, tools}` rows, read and checked as the trainer reads them), `manifest.json`, and
    README.md (the splits as the `datasets` configuration, the manifest). Returns split -> path.

    Raises:
        ManifestError: the folder has no valid manifest.
        DatasetError: a row is not a trainable conversation.
        HubError: the build has no train rows.
    """
    manifest = read_manifest(dataset_dir)
    splits: dict[str, str] = {}
    (into / DATA_DIR).mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        source = dataset_dir / jsonl_file(split)
        rows = read_rows(source) if source.is_file() else []
        if rows:
            splits[split] = f"{DATA_DIR}/{jsonl_file(split)}"
            lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            (into / splits[split]).write_text("".join(lines), encoding="utf-8")
    if "train" not in splits:
        raise HubError(f"{dataset_dir} has no train rows ({jsonl_file('train')}) to push")
    shutil.copy2(dataset_dir / MANIFEST_FILE, into / MANIFEST_FILE)
    (into / "README.md").write_text(dataset_card(manifest, splits), encoding="utf-8")
    return splits
