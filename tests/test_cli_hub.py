"""`tracewheel models export|push` and `tracewheel dataset push`: names resolved by inference's own
control servicer, a real tiny adapter, pushes to a local stand-in of the Hub's HTTP API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracewheel.core.chat import SERVING_TEMPLATE, load_template
from tracewheel.inference.adapters import ModelRegistry, PeftAdapters
from tracewheel.inference.deploy import Deployer
from tracewheel.inference.server import InferenceControlServicer
from tracewheel.inference.testing import tiny_test_model
from tracewheel.trainer.hub_standin import HubStandIn
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import train
from tracewheel.v1 import inference_pb2_grpc

from .cli_services import BackgroundLoop, run_cli, serve

TOKEN = "hf_test_token"
TOOLS = [{"type": "function", "function": {"name": "open", "parameters": {"type": "object", "properties": {}}}}]


def _row(i: int) -> dict[str, object]:
    messages = [{"role": "user", "content": f"Say {i}."}, {"role": "assistant", "content": f"{i}."}]
    return {"messages": messages, "tools": json.dumps(TOOLS)}


def _dataset(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"version": version, "rows": {"train": 3, "eval": 1}}))
    (folder / "train.jsonl").write_text("".join(json.dumps(_row(i)) + "\n" for i in range(3)))
    (folder / "eval.jsonl").write_text(json.dumps(_row(9)) + "\n")
    return folder


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny adapter as the trainer leaves it: <job>/adapter/."""
    root = tmp_path_factory.mktemp("job")
    recipe = Recipe(lora_r=4, lora_alpha=8, max_steps=1, save_steps=1, eval=False, device="cpu")
    return train(_dataset(root / "ds", "ds-1"), tiny_test_model(), root / "agent-1", recipe).adapter_dir


@pytest.fixture
def inference(background: BackgroundLoop, home: Path, adapter_dir: Path) -> Iterator[str]:
    """Inference's control servicer listing adapter agent-1 behind the alias `agent`."""
    registry = ModelRegistry(PeftAdapters(engine=None), "tiny")  # listed, not loaded: export reads the files
    servicer = InferenceControlServicer(registry, Deployer(registry, home / "deployments.json", alias="agent"))
    registry.adapters["agent-1"] = str(adapter_dir)
    registry.aliases["agent"] = "agent-1"
    server, address = background.run(
        serve("InferenceControl", lambda s: inference_pb2_grpc.add_InferenceControlServicer_to_server(servicer, s))
    )
    yield address
    background.run(server.stop(0))


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandIn]:
    standin = HubStandIn(TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield standin
    standin.close()


def test_export_merges_what_the_alias_serves(
    inference: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "merged"
    ran = run_cli(capsys, "models", "export", "agent", "--merge", "--out", str(out), "--address", inference, "--json")
    assert ran.code == 0, ran.err
    result = json.loads(ran.out)
    assert (result["name"], result["merged"], result["dtype"], result["out"]) == ("agent-1", True, "bfloat16", str(out))
    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "qwen3"
    assert AutoTokenizer.from_pretrained(out).chat_template == load_template(SERVING_TEMPLATE)
    assert "- Adapter: `agent-1`" in (out / "README.md").read_text()


def test_export_without_merge_writes_the_adapter_with_its_card(
    inference: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "adapter"
    ran = run_cli(capsys, "models", "export", "agent-1", "--out", str(out), "--address", inference)
    assert ran.code == 0, ran.err
    assert "exported agent-1 to" in ran.out
    assert (out / "adapter_model.safetensors").is_file() and "library_name: peft" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "no adapter folder 'nope' here and inference serves no adapter or alias of that name"),
        ("tiny", "'tiny' is the base model tiny: it has no adapter to export"),
    ],
)
def test_export_of_what_is_not_an_adapter_is_one_line(
    inference: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    ran = run_cli(capsys, "models", "export", name, "--out", str(tmp_path / "out"), "--address", inference)
    assert ran.code == 2 and ran.err.count("\n") == 1 and message in ran.err
    assert not (tmp_path / "out").exists()


def test_export_to_a_non_empty_folder_is_refused_before_anything(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    # the address answers nothing: the refusal comes before any call
    ran = run_cli(capsys, "models", "export", "agent", "--merge", "--out", str(tmp_path / "taken"),
                  "--address", "127.0.0.1:1")  # fmt: skip
    assert ran.code == 2 and "is not empty; export to a new or empty folder" in ran.err
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["x"]


def test_models_push_sends_the_adapter_and_its_card(
    inference: str, hub: HubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = run_cli(capsys, "models", "push", "agent", "--repo", "acme/agent-1", "--private", "--address", inference,
                  "--json")  # fmt: skip
    assert ran.code == 0, ran.err
    repo = hub.repo("model", "acme/agent-1")
    assert repo.created["visibility"] == "private"
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md", "chat_template.jinja"} <= set(repo.files)
    assert json.loads(ran.out)["commit_url"].startswith(f"{hub.url}/acme/agent-1/commit/")


def test_models_push_of_an_exported_folder_sends_it_as_it_is(
    hub: HubStandIn, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "merged"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "README.md").write_text("---\nlibrary_name: transformers\n---\n")
    ran = run_cli(capsys, "models", "push", str(folder), "--repo", "acme/merged")
    assert ran.code == 0, ran.err
    assert set(hub.repo("model", "acme/merged").files) == {"config.json", "README.md"}


def test_dataset_push_of_a_build_folder(
    hub: HubStandIn, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = _dataset(tmp_path / "ds-2", "ds-2")
    ran = run_cli(capsys, "dataset", "push", str(build), "--repo", "acme/traces", "--json")
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["splits"] == {"train": "data/train.jsonl", "eval": "data/eval.jsonl"}
    assert {"data/train.jsonl", "data/eval.jsonl", "manifest.json", "README.md"} == set(
        hub.repo("dataset", "acme/traces").files
    )


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (("dataset", "push", "ds-1", "--repo", "traces"), {"HF_TOKEN": TOKEN}, "'traces' is not a Hub repository id"),
        (("models", "push", "agent", "--repo", "a/b/c"), {"HF_TOKEN": TOKEN}, "'a/b/c' is not a Hub repository id"),
        (("dataset", "push", "ds-1", "--repo", "acme/traces"), {}, "no Hugging Face token: set HF_TOKEN"),
        (("models", "push", "agent", "--repo", "acme/x"), {}, "no Hugging Face token: set HF_TOKEN"),
    ],
)
def test_a_push_without_token_or_with_a_bad_repo_fails_before_any_call(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # the services' addresses answer nothing: the refusal comes first
    ran = run_cli(capsys, *argv, "--address", "127.0.0.1:1")
    assert ran.code == 2 and ran.err.count("\n") == 1 and message in ran.err


def test_dataset_push_of_an_unknown_version_is_not_found(
    background: BackgroundLoop, hub: HubStandIn, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tracewheel.v1 import dataset_pb2_grpc

    from .cli_services import dataset_service

    servicer, store = dataset_service(home)
    server, address = background.run(
        serve("Dataset", lambda s: dataset_pb2_grpc.add_DatasetServicer_to_server(servicer, s))
    )
    try:
        ran = run_cli(capsys, "dataset", "push", "ds-9", "--repo", "acme/traces", "--address", address)
    finally:
        background.run(server.stop(0))
        store.close()
    assert ran.code == 2 and "no dataset build 'ds-9'; `tracewheel dataset list` shows the builds" in ran.err
    assert hub.state.requests == []
