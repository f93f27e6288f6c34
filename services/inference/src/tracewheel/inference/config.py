"""Settings of the inference service (environment variables TW_INFERENCE_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from tracewheel.core.http_security import HttpOptions
from tracewheel.core.settings import ServiceSettings
from tracewheel.inference.capture.options import CaptureOptions
from tracewheel.inference.gate import GateMode
from tracewheel.inference.passthrough import UpstreamOptions


class InferenceSettings(ServiceSettings, HttpOptions, CaptureOptions, UpstreamOptions):
    model_config = SettingsConfigDict(env_prefix="TW_INFERENCE_", extra="forbid", frozen=True)

    grpc_port: int = Field(default=50051, ge=0, le=65535, description="gRPC control port.")
    http_host: str = Field(default="127.0.0.1", description="Address the OpenAI HTTP API binds to.")
    http_port: int = Field(default=8000, ge=0, le=65535, description="OpenAI HTTP API port.")
    backend: Literal["transformers", "vllm", "upstream"] = Field(
        default="transformers",
        description="transformers: the embedded CPU engine; vllm: own a `vllm serve` process (GPU); upstream: "
        "pass-through to the OpenAI-compatible server at upstream_url (for capture; no adapters, no deployments).",
    )
    model: str = Field(
        default="SmolLM2-135M-Instruct",
        description="The bundled default (converted once from its GGUF) or a local Hugging Face model folder.",
    )
    served_model_name: str = Field(default="", description="Name clients use for the base model; default: the model's.")
    chat_template: str = Field(
        default="",
        description="A template name shipped in tracewheel.core.chat ('smollm2_tools'), a .jinja file path, or '' "
        "for the model family's (SmolLM2 ids get smollm2_tools) and else the model's own.",
    )
    tool_call_parser: str | None = Field(
        default=None,
        description="Tool-call parser by vLLM name; unset: the model family's (tracewheel.core.chat, hermes for "
        "SmolLM2 and Qwen3), as dataset builds and the trainer resolve the family; '' disables tool parsing.",
    )
    reasoning_parser: str | None = Field(
        default=None,
        description="Reasoning parser by vLLM name; unset: the model family's (qwen3 for SmolLM2 and Qwen3); '' "
        "disables it.",
    )
    max_batch: int = Field(default=8, ge=1, description="Requests decoded together in one forward pass.")
    max_waiting_requests: int = Field(
        default=64,
        ge=0,
        description="CPU engine: requests that may wait for a place in the batch; one more is answered 429 "
        "with Retry-After.",
    )
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="Weights and activations. auto: float32 on the CPU engine (its outputs are the reference), "
        "the model's own on vLLM (vLLM's --dtype auto). bfloat16 on the CPU engine serves ~1.3x faster on a "
        "CPU with bf16 instructions and slower on one without; outputs round differently.",
    )
    merge_adapters: bool = Field(
        default=True,
        description="CPU engine: run forwards whose rows share one adapter on its merged weights instead "
        "of PEFT's per-row path (~1.3x; engine/merging.py).",
    )
    speculative_tokens: int = Field(
        default=0,
        ge=0,
        description="Draft tokens per decode step, looked up in the request's own tokens (vLLM's ngram "
        "speculation, n-grams of engine/speculative.PROMPT_LOOKUP_MAX down to _MIN tokens; greedy requests only "
        "on the CPU engine); 0 disables.",
    )
    prefix_cache_tokens: int = Field(default=32768, ge=0, description="Tokens of prompt KV kept for reuse; 0 disables.")
    default_max_tokens: int = Field(
        default=512, ge=1, description="max_tokens when a request gives none (cut to what the context leaves)."
    )
    trust_request_chat_template: bool = Field(
        default=False,
        description="Render a request's own chat_template (vLLM's --trust-request-chat-template); off, such a "
        "request is a 400: a template is code the server runs.",
    )
    torch_threads: int = Field(default=0, ge=0, description="torch intra-op threads; 0 keeps torch's default.")
    consume_events: bool = Field(
        default=True,
        description="Consume models.v1.trained from NATS (the gate, on one replica of several) and follow "
        "models.v1.deployed (every replica serves what was deployed, and catches up at start).",
    )
    adapters_dir: Path | None = Field(
        default=None,
        description="Where the trainer writes adapters (its adapters_dir, shared): a models.v1.trained event's "
        "adapter must lie inside it, with the trainer's eval.json beside it; default TRACEWHEEL_HOME/adapters.",
    )
    deploy_alias: str = Field(
        default="agent", description="The alias that models.v1.trained moves when the gate passes."
    )
    deploy_gate: GateMode = Field(
        default="strict",
        description="'strict': the candidate's success rate beats the current model's by more than deploy_min_gain; "
        "'paired': on the same suite it wins more of the tasks the two disagree on, at sign-test p <= deploy_max_p; "
        "'always' deploys without comparing (the --quick demo's tiny model only).",
    )
    deploy_min_gain: float = Field(
        default=0.0,
        description="strict gate: the candidate's success rate must beat the current one by more than this.",
    )
    deploy_max_p: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="paired gate: the largest one-sided sign-test p at which the candidate's wins count as real.",
    )
    vllm_max_lora_rank: int = Field(default=64, description="vLLM --max-lora-rank.")
    vllm_max_loras: int = Field(default=4, description="vLLM --max-loras.")
    vllm_port: int = Field(default=8001, description="Port of the owned `vllm serve` process.")

    def resolved_adapters_dir(self) -> Path:
        return self.adapters_dir or self.home / "adapters"

    @model_validator(mode="after")
    def _gate_settings(self) -> InferenceSettings:
        # a margin or a p-value given for a gate that does not read it would be ignored silently
        if "deploy_min_gain" in self.model_fields_set and self.deploy_gate != "strict":
            raise ValueError(
                f"deploy_min_gain applies to the strict gate only, not to deploy_gate={self.deploy_gate!r}"
            )
        if "deploy_max_p" in self.model_fields_set and self.deploy_gate != "paired":
            raise ValueError(f"deploy_max_p applies to the paired gate only, not to deploy_gate={self.deploy_gate!r}")
        return self

    @model_validator(mode="after")
    def _upstream_settings(self) -> InferenceSettings:
        if (self.backend == "upstream") != bool(self.upstream_url):
            raise ValueError("upstream_url is set exactly when backend is 'upstream' (pass-through mode)")
        # a pass-through has no adapters: it must not take models.v1.trained from the real inference service
        if self.backend == "upstream" and self.consume_events and "consume_events" in self.model_fields_set:
            raise ValueError("consume_events does not apply to backend 'upstream' (it serves no adapters)")
        return self
