"""The chat-format resolver: the family by id or config.json, overrides by name or path, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracewheel.core.chat import (
    FAMILIES,
    SERVING_TEMPLATE,
    TEMPLATE_NAMES,
    TRAINING_TEMPLATE,
    ChatTemplateError,
    UnknownTemplateError,
    detect_family,
    load_template,
    resolve_chat_format,
    template_label,
    template_sha256,
)

PLAIN = "{% for m in messages %}{{ m.content }}{% endfor %}"
MARKED = "{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}"


def model_folder(root: Path, model_type: str) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    return root


def test_shipped_templates_load_by_name_and_an_unknown_name_lists_the_known_ones() -> None:
    assert TEMPLATE_NAMES == (SERVING_TEMPLATE, TRAINING_TEMPLATE, "qwen3", "qwen3_train")
    assert all("<|im_start|>" in load_template(name) for name in TEMPLATE_NAMES)
    with pytest.raises(UnknownTemplateError, match="known templates: smollm2_tools, smollm2_tools_train"):
        load_template("chatml")


@pytest.mark.parametrize("model_id", ["HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct", "smollm2-1.7b/"])
def test_a_smollm2_id_gets_the_shipped_pair_and_the_parsers(model_id: str) -> None:
    chat = resolve_chat_format(model_id)

    assert chat.family == "smollm2"
    assert chat.serving_template == load_template(SERVING_TEMPLATE)
    assert chat.training_template == load_template(TRAINING_TEMPLATE)
    assert (chat.tool_call_parser, chat.reasoning_parser) == ("hermes", "qwen3")
    assert chat.training_template_sha256 is not None and len(chat.training_template_sha256) == 64


def test_a_local_folder_is_read_by_its_config_model_type(tmp_path: Path) -> None:
    # SmolLM2's own config.json says "llama", shared by other families: not taken for SmolLM2.
    named_like_smollm2 = model_folder(tmp_path / "SmolLM2-135M-Instruct", "llama")
    qwen3 = model_folder(tmp_path / "some-name", "qwen3")
    qwen3_moe = model_folder(tmp_path / "other-name", "qwen3_moe")

    assert detect_family(str(named_like_smollm2)) is None
    assert (detect_family(str(qwen3)), detect_family(str(qwen3_moe))) == (FAMILIES[1], FAMILIES[1])
    assert resolve_chat_format(str(qwen3)).serving_template == load_template("qwen3")
    chat = resolve_chat_format(str(named_like_smollm2))
    assert (chat.family, chat.serving_template, chat.training_template) == (None, None, None)
    assert chat.training_template_sha256 is None


@pytest.mark.parametrize("model_id", ["Qwen/Qwen3-4B", "Qwen3-30B-A3B", "qwen/qwen3-0.6b-fp8/"])
def test_a_qwen3_id_gets_qwens_template_pair_and_the_parsers(model_id: str) -> None:
    chat = resolve_chat_format(model_id)

    assert chat.family == "qwen3"
    assert (chat.serving_template, chat.training_template) == (load_template("qwen3"), load_template("qwen3_train"))
    assert (chat.tool_call_parser, chat.reasoning_parser) == ("hermes", "qwen3")
    assert detect_family("Qwen/Qwen2.5-7B-Instruct") is None


def test_a_folder_is_in_the_family_of_the_shipped_template_it_carries(tmp_path: Path) -> None:
    # A Qwen3-architecture model on SmolLM2's tokenizer (the tests' tiny model) keeps SmolLM2's format.
    serving = model_folder(tmp_path / "serving", "qwen3")
    (serving / "chat_template.jinja").write_text(load_template(SERVING_TEMPLATE), encoding="utf-8")
    training = model_folder(tmp_path / "training", "qwen3")
    config = {"chat_template": load_template(TRAINING_TEMPLATE)}
    (training / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    own = model_folder(tmp_path / "own", "qwen3")
    (own / "chat_template.jinja").write_text(PLAIN, encoding="utf-8")

    assert detect_family(str(serving)) == detect_family(str(training)) == FAMILIES[0]
    assert resolve_chat_format(str(training)).serving_template == load_template(SERVING_TEMPLATE)
    assert detect_family(str(own)) == FAMILIES[1]  # a template of its own: the model_type decides


def test_an_unknown_model_keeps_the_tokenizers_templates_and_the_project_parsers() -> None:
    chat = resolve_chat_format("meta-llama/Llama-3.1-8B-Instruct")

    assert (chat.family, chat.serving_template, chat.training_template) == (None, None, None)
    assert (chat.tool_call_parser, chat.reasoning_parser) == ("hermes", "qwen3")
    assert detect_family("") is None


def test_an_override_by_name_replaces_only_its_role() -> None:
    chat = resolve_chat_format("some/other-model", serving=TRAINING_TEMPLATE)

    assert chat.serving_template == load_template(TRAINING_TEMPLATE)
    assert chat.training_template is None
    assert resolve_chat_format("", training=TRAINING_TEMPLATE).training_template == load_template(TRAINING_TEMPLATE)


def test_an_override_by_path_reads_the_file(tmp_path: Path) -> None:
    serving, training = tmp_path / "serve.jinja", tmp_path / "train.jinja"
    serving.write_text(PLAIN, encoding="utf-8")
    training.write_text(MARKED, encoding="utf-8")

    chat = resolve_chat_format("SmolLM2-135M-Instruct", serving=str(serving))
    assert chat.serving_template == PLAIN
    assert chat.training_template == load_template(TRAINING_TEMPLATE)
    assert resolve_chat_format("", training=str(training)).training_template == MARKED


def test_an_override_that_is_neither_a_name_nor_a_file_names_the_setting_and_the_known_names(
    tmp_path: Path,
) -> None:
    with pytest.raises(UnknownTemplateError, match=r"TW_X_CHAT_TEMPLATE: 'chatml' is neither .*smollm2_tools"):
        resolve_chat_format("", serving="chatml", setting="TW_X_CHAT_TEMPLATE")
    with pytest.raises(UnknownTemplateError, match="nor a file"):
        resolve_chat_format("", training=str(tmp_path / "missing.jinja"))


def test_a_training_template_without_generation_markers_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.jinja"
    plain.write_text(PLAIN, encoding="utf-8")

    refused = r"no \{% generation %\} markers.*recipe chat_template: smollm2_tools_train"
    with pytest.raises(ChatTemplateError, match=refused):
        resolve_chat_format("", training=str(plain), setting="recipe chat_template")
    with pytest.raises(ChatTemplateError, match="generation"):
        resolve_chat_format("SmolLM2-135M-Instruct", training=SERVING_TEMPLATE)
    # a serving template needs no markers
    assert resolve_chat_format("", serving=str(plain)).serving_template == PLAIN


def test_a_parser_setting_replaces_the_familys_and_empty_turns_parsing_off() -> None:
    chat = resolve_chat_format("Qwen/Qwen3-4B", tool_call_parser="qwen3_xml", reasoning_parser="")

    assert (chat.tool_call_parser, chat.reasoning_parser) == ("qwen3_xml", "")
    assert chat.serving_template == load_template("qwen3")  # the rest stays the family's
    assert resolve_chat_format("some/other-model", reasoning_parser="deepseek_r1").reasoning_parser == "deepseek_r1"


def test_a_template_hash_reads_as_its_shipped_name() -> None:
    sha = template_sha256(load_template("qwen3_train"))

    assert template_label(sha) == f"qwen3_train (sha256 {sha[:12]})"
    assert resolve_chat_format("Qwen3-4B").training_template_sha256 == sha
    assert template_label("ab" * 32) == "a template not shipped here (sha256 abababababab)"
