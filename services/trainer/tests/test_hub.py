"""Pushes through huggingface_hub to a local stand-in of the Hub's HTTP API (hub_standin.py): the
repository is created as asked and the expected files arrive; bad input fails before any request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tracewheel.core.dataset_layout import ManifestError
from tracewheel.trainer.hub import HubError, HubRequestFailed, hub_target, push_folder, stage_dataset
from tracewheel.trainer.hub_standin import HubStandIn

from .conftest import agent_row, write_dataset

TOKEN = "hf_test_token"


@pytest.fixture
def hub() -> Iterator[HubStandIn]:
    standin = HubStandIn(TOKEN)
    yield standin
    standin.close()


def _env(hub: HubStandIn, token: str = TOKEN) -> dict[str, str]:
    return {"HF_TOKEN": token, "HF_ENDPOINT": hub.url}


def test_a_model_folder_is_pushed_to_a_private_repo(hub: HubStandIn, tmp_path: Path) -> None:
    folder = tmp_path / "merged"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "qwen3"}')
    (folder / "model.safetensors").write_bytes(b"\x00\x01weights")
    (folder / "README.md").write_text("---\nlibrary_name: transformers\n---\n# m\n")

    url = push_folder(folder, hub_target("acme/agent-1", "model", private=True, environ=_env(hub)), "tracewheel: m")

    repo = hub.repo("model", "acme/agent-1")
    assert repo.created == {"name": "agent-1", "organization": "acme", "visibility": "private", "type": "model"}
    assert repo.files == {path.name: path.read_bytes() for path in folder.iterdir()}
    assert repo.commits == ["tracewheel: m"] and url.startswith(f"{hub.url}/acme/agent-1/commit/")


def test_pushing_again_keeps_the_repository(hub: HubStandIn, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    target = hub_target("acme/agent-1", "model", environ=_env(hub))
    push_folder(tmp_path, target, "first")
    push_folder(tmp_path, target, "second")
    assert hub.repo("model", "acme/agent-1").commits == ["first", "second"]


def test_a_dataset_build_is_staged_as_trl_rows_with_its_manifest(hub: HubStandIn, tmp_path: Path) -> None:
    build = write_dataset(tmp_path / "ds-3", [agent_row(1), agent_row(2)], [agent_row(3)], version="ds-3")
    staged = tmp_path / "staged"
    assert stage_dataset(build, staged) == {"train": "data/train.jsonl", "eval": "data/eval.jsonl"}

    push_folder(staged, hub_target("acme/traces", "dataset", environ=_env(hub)), "tracewheel: dataset ds-3")

    repo = hub.repo("dataset", "acme/traces")
    assert repo.created["type"] == "dataset" and "visibility" not in repo.created
    assert set(repo.files) == {"data/train.jsonl", "data/eval.jsonl", "manifest.json", "README.md"}
    train = [json.loads(line) for line in repo.files["data/train.jsonl"].decode().splitlines()]
    assert train == [agent_row(1), agent_row(2)]  # {messages, tools}: what TRL's SFTTrainer takes
    card = repo.files["README.md"].decode()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train.jsonl"},
        {"split": "eval", "path": "data/eval.jsonl"},
    ]
    assert '"version": "ds-3"' in card and "train: 2 rows, eval: 1 rows" in card


def test_a_staged_dataset_loads_with_datasets(tmp_path: Path) -> None:
    from datasets import load_dataset

    build = write_dataset(tmp_path / "ds-3", [agent_row(1), agent_row(2)], [agent_row(3)], version="ds-3")
    stage_dataset(build, tmp_path / "staged")
    splits = load_dataset(str(tmp_path / "staged"))
    assert {name: len(split) for name, split in splits.items()} == {"train": 2, "eval": 1}
    assert json.loads(splits["train"][0]["tools"])[0]["function"]["name"] == "browser_navigate"


def test_an_empty_eval_split_is_left_out(tmp_path: Path) -> None:
    build = write_dataset(tmp_path / "ds-4", [agent_row(1)], [], version="ds-4")
    assert stage_dataset(build, tmp_path / "staged") == {"train": "data/train.jsonl"}


def test_a_build_without_rows_or_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HubError, match="has no train rows"):
        stage_dataset(write_dataset(tmp_path / "empty", [], []), tmp_path / "a")
    with pytest.raises(ManifestError, match=r"manifest\.json is missing"):
        stage_dataset(tmp_path / "nothing", tmp_path / "b")


@pytest.mark.parametrize("repo_id", ["agent-1", "acme/agent/1", "acme/bad--name", "acme/", "/agent", "ac me/x"])
def test_a_malformed_repo_id_is_refused_before_any_request(hub: HubStandIn, repo_id: str) -> None:
    with pytest.raises(HubError, match="is not a Hub repository id; give ORG/NAME"):
        hub_target(repo_id, "model", environ=_env(hub))
    assert hub.state.requests == []


def test_no_token_is_refused_before_any_request(hub: HubStandIn) -> None:
    with pytest.raises(HubError, match="no Hugging Face token: set HF_TOKEN"):
        hub_target("acme/agent-1", "model", environ={"HF_ENDPOINT": hub.url})
    assert hub.state.requests == []


def test_a_token_the_hub_refuses_is_one_clear_error(hub: HubStandIn, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(HubRequestFailed, match=f"the Hub at {hub.url}/acme/agent-1 answered 401"):
        push_folder(tmp_path, hub_target("acme/agent-1", "model", environ=_env(hub, "wrong")), "m")
    assert hub.state.repos == {}
