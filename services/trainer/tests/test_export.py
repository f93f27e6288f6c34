"""Exports of a tiny trained adapter: merged logits equal base + adapter, the folder loads with
transformers and carries the serving template and a card; adapter exports; bad targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracewheel.core.chat import SERVING_TEMPLATE, TRAINING_TEMPLATE, load_template
from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.files import write_json_atomically
from tracewheel.trainer.evaluation import EVAL_FILE, Evaluation
from tracewheel.trainer.export import (
    MERGED,
    ExportError,
    export_adapter,
    export_merged,
    export_on_success,
    export_source,
)
from tracewheel.trainer.jobs import Job, RunOutput
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import ADAPTER, train
from tracewheel.trainer.training_record import read_training_record

from .conftest import agent_row, write_dataset

PROMPT = "<|im_start|>user\nOpen page 3 and tell me its title.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def job_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A job folder as the trainer leaves it: adapter/ (trained a few steps at a high learning
    rate, so merging changes the logits) and eval.json."""
    root = tmp_path_factory.mktemp("export")
    dataset = write_dataset(root / "dataset", [agent_row(i) for i in range(4)], [], version="ds-7")
    recipe = Recipe(lora_r=4, lora_alpha=8, max_steps=2, save_steps=2, learning_rate=5e-2, device="cpu", eval=False,
                    chat_template=TRAINING_TEMPLATE)  # fmt: skip
    job = root / "agent-1"
    train(dataset, tiny_model_dir, job, recipe)
    tasks = [TaskResult(task_id="t1", passed=True), TaskResult(task_id="t2", passed=False)]
    evaluation = Evaluation(
        metrics=EvalResult(model="agent-1", suite="heldout", task_results=tasks),
        baseline_metrics=EvalResult(model="tiny", suite="heldout", task_results=[tasks[1]]),
    )
    write_json_atomically(job / EVAL_FILE, evaluation.model_dump(mode="json"))
    return job


def _logits(model: object, tokenizer: object) -> object:
    import torch

    ids = tokenizer(PROMPT, return_tensors="pt").input_ids  # type: ignore[operator]
    with torch.no_grad():
        return model(ids).logits.float()  # type: ignore[operator]


def test_merged_logits_equal_base_plus_adapter(job_dir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = export_merged(export_source("agent-1", job_dir / ADAPTER), tmp_path / "merged", dtype="float32")

    tokenizer = AutoTokenizer.from_pretrained(out)
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    base_logits = _logits(base, tokenizer)
    unmerged = PeftModel.from_pretrained(base, job_dir / ADAPTER).eval()
    expected = _logits(unmerged, tokenizer)
    assert (expected - base_logits).abs().max() > 1e-3  # the adapter changes the output
    assert torch.allclose(_logits(merged, tokenizer), expected, atol=1e-4)
    assert not any("lora" in name for name in merged.state_dict())


def test_merged_bf16_folder_loads_with_the_serving_template_and_a_card(
    job_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = export_merged(export_source("agent-1", job_dir / ADAPTER), tmp_path / "merged")

    with safe_open(str(out / "model.safetensors"), framework="pt") as weights:
        assert {weights.get_tensor(key).dtype for key in weights.keys()} == {torch.bfloat16}  # noqa: SIM118
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == load_template(SERVING_TEMPLATE)  # served, not trained: no generation markers
    assert (out / "chat_template.jinja").read_text() == load_template(SERVING_TEMPLATE)
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    unmerged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), job_dir / ADAPTER)
    assert (_logits(merged, tokenizer) - _logits(unmerged.eval(), tokenizer)).abs().max() < 0.1  # bf16 rounding
    card = (out / "README.md").read_text()
    assert "library_name: transformers" in card and "- merged" in card
    assert "- Adapter: `agent-1`" in card and f"- Base model: `{tiny_model_dir}`" in card
    assert "- Dataset version: `ds-7`" in card and "learning_rate: 0.05" in card
    assert "| this adapter (agent-1) | 2 | 0.500" in card and "| base model (tiny) | 1 | 0.000" in card
    assert "--enable-auto-tool-choice --tool-call-parser hermes --reasoning-parser qwen3" in card
    assert oct((out).stat().st_mode & 0o777) == oct(0o755)


def test_the_adapter_records_what_it_was_trained_from(job_dir: Path, tiny_model_dir: Path) -> None:
    record = read_training_record(job_dir / ADAPTER)
    assert record is not None
    assert (record.base_model, record.dataset_version, record.global_step, record.train_rows) == (
        str(tiny_model_dir),
        "ds-7",
        2,
        4,
    )
    assert record.recipe["lora_r"] == 4 and record.recipe["device"] == "cpu" and record.eval_loss is None


def test_adapter_export_has_the_card_and_the_serving_template(job_dir: Path, tmp_path: Path) -> None:
    out = export_adapter(export_source("agent-1", job_dir / ADAPTER), tmp_path / "adapter")
    names = {path.name for path in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "training.json"} <= names
    assert "trained_rows.json" not in names
    assert (out / "chat_template.jinja").read_text() == load_template(SERVING_TEMPLATE)
    card = (out / "README.md").read_text()
    assert "library_name: peft" in card and "--enable-lora --max-lora-rank 4 --lora-modules agent-1=" in card


def test_a_non_empty_target_is_refused_and_left_alone(job_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="is not empty; export to a new or empty folder"):
        export_merged(export_source("agent-1", job_dir / ADAPTER), out)
    assert [path.name for path in out.iterdir()] == ["keep.txt"]


def test_an_empty_target_folder_is_filled(job_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    export_adapter(export_source("agent-1", job_dir / ADAPTER), out)
    assert (out / "adapter_model.safetensors").is_file()


def test_an_adapter_for_another_base_model_leaves_nothing(job_dir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    other = tmp_path / "other-base"
    config = Qwen3Config(vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16)  # fmt: skip
    Qwen3ForCausalLM(config).save_pretrained(other)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (other / name).write_bytes((tiny_model_dir / name).read_bytes())
    with pytest.raises(ExportError, match="does not fit base model"):
        export_merged(export_source("agent-1", job_dir / ADAPTER, base_model_dir=other), tmp_path / "out")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other-base"]  # no target, no staging folder


def test_a_folder_that_is_no_adapter_or_has_no_base_model_is_refused(job_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="is not a PEFT adapter folder"):
        export_source("x", tmp_path)
    with pytest.raises(ExportError, match="is not a model folder here; name it with --base-model DIR"):
        export_source("x", job_dir / ADAPTER, base_model_dir=tmp_path / "gone")


def test_export_on_success_merges_each_job_once(job_dir: Path, tmp_path: Path) -> None:
    import shutil

    job = tmp_path / "agent-2"
    shutil.copytree(job_dir, job, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    phases: list[str] = []
    run = export_on_success(lambda j, progress, stop: RunOutput(str(job / ADAPTER)))
    queued = Job("agent-2", "ds-7", "", "tiny")
    run(queued, lambda progress: phases.append(progress.phase), lambda: None)
    assert json.loads((job / MERGED / "config.json").read_text())["dtype"] == "bfloat16"
    assert "| this adapter (agent-1) |" in (job / MERGED / "README.md").read_text()
    run(queued, lambda progress: phases.append(progress.phase), lambda: None)  # resumed: not again
    assert phases == ["exporting"]
