"""Settings of the agent service (environment variables TW_AGENT_*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from tracewheel.core.settings import ServiceSettings

TASK_TOOLS = (
    "browser_navigate",
    "browser_navigate_back",
    "browser_snapshot",
    "browser_click",
    "browser_type",
    "browser_fill_form",
    "browser_tabs",
)
"""The browser tools the task suites need (the default tool subset offered to the model)."""

REFERENCE_TOOL_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "browser_navigate": ("url",),
    "browser_snapshot": (),
    "browser_click": ("element", "ref"),
    "browser_type": ("element", "ref", "text", "submit"),
    "browser_fill_form": ("fields",),
    "browser_tabs": ("action", "index"),
}
"""The arguments the task suites' reference solutions use, per tool: the smallest offer
(`tool_arguments`) that still lets a model do every task as the references do."""


class AgentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TW_AGENT_", extra="forbid", frozen=True)

    grpc_port: int = Field(default=50053, ge=0, le=65535, description="gRPC port.")
    inference_url: str = Field(
        default="http://127.0.0.1:8000/v1", description="OpenAI-compatible base URL of the inference service."
    )
    inference_api_key: str = Field(default="EMPTY", description="API key sent to the inference server.")
    model: str = Field(default="agent", description="Model a request without one uses: inference's deploy alias.")
    gateway_address: str = Field(
        default="127.0.0.1:50052",
        description="mcp-gateway gRPC address; empty runs the gateway's browser in this process.",
    )
    gateway_session_wait_s: float = Field(
        default=600.0,
        ge=0,
        description="How long a task waits for a free browser session while the gateway's are all in use "
        "(more agents at once than its max_sessions); the task's time limit starts after. 0: fail at once.",
    )
    task_site_url: str = Field(default="http://127.0.0.1:8400", description="Where the task suites' site is served.")
    serve_task_site: bool = Field(
        default=True, description="Serve the bundled task site from this process at task_site_port."
    )
    task_site_port: int = Field(default=8400, ge=0, le=65535, description="Port of the served task site.")
    task_site_seed: int = Field(default=0, description="Seed of the served site and of the suites.")
    task_site_items: int = Field(default=300, ge=10, description="Catalogue size of the served site and suites.")
    tools: tuple[str, ...] = Field(default=TASK_TOOLS, description="Tools offered to the model (JSON list).")
    tool_arguments: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description='Per tool, the arguments offered to the model (JSON object, e.g. {"browser_click": ["element", '
        '"ref"]}); a tool not named offers all; required arguments must be listed (tool_schemas.py).',
    )
    argument_descriptions: bool = Field(
        default=True, description="Offer the descriptions of tool arguments (false: names and types only)."
    )
    max_steps: int = Field(default=15, ge=1, description="Most model turns per task.")
    answer_at_limit: bool = Field(
        default=False,
        description="At max_steps without an answer, ask for one in one more turn (tool_choice none), not fail.",
    )
    task_reminder: bool = Field(
        default=False,
        description="End every tool result with the user's request (the request next to each decision).",
    )
    observation_window: int = Field(
        default=0,
        ge=0,
        description="Send only the last N tool results in full, earlier ones cut to their head (0: all in full).",
    )
    repeat_limit: int = Field(
        default=0,
        ge=0,
        description="End a run when the same call returns the same result this many times in a row (0: never).",
    )
    revisit_limit: int = Field(
        default=0,
        ge=0,
        description="End a run when the same call returns the same result this many times in the run, in a row "
        "or not, refs aside: a model going round a cycle of pages (0: never).",
    )
    time_limit_s: float = Field(default=300.0, gt=0, description="Wall-clock limit of one task.")
    result_char_limit: int = Field(default=6000, ge=0, description="Tool results are cut to this length (0: never).")
    guidance_prompt: str | None = Field(default=None, description="System prompt sent first (none by default).")
    strip_guidance: bool = Field(default=False, description="Leave the guidance prompt out of traces.")
    temperature: float | None = Field(default=None, ge=0.0, description="Sampling temperature (unset: server's).")
    max_tokens: int | None = Field(default=None, ge=1, description="Most tokens per model turn (unset: server's).")
    enable_thinking: bool | None = Field(
        default=None, description="chat_template_kwargs.enable_thinking sent to inference (unset: not sent)."
    )
    concurrency: int = Field(default=2, ge=1, description="Tasks run at once in suites and evaluations.")
    train_suite_size: int = Field(default=0, ge=0, description="Tasks in the train suite (0: the default, 40).")
    heldout_suite_size: int = Field(default=0, ge=0, description="Tasks in the held-out suite (0: the default, 20).")
    eval_cache_dir: Path | None = Field(
        default=None,
        description="Where evaluations asked with use_cache are kept; default TRACEWHEEL_HOME/agent/evals.",
    )
    trace_dir: Path | None = Field(
        default=None, description="When set, every trace is also written there as a Trelis-compatible JSON file."
    )
    keep_eval_traces: bool = Field(
        default=True, description="Write every evaluation's traces to eval_trace_dir (they are never published)."
    )
    eval_trace_dir: Path | None = Field(
        default=None,
        description="Where evaluation traces are written, a folder per model and suite; "
        "default TRACEWHEEL_HOME/agent/eval-traces.",
    )
    publish_traces: bool = Field(default=True, description="Publish traces to traces.v1.completed (NATS).")

    @model_validator(mode="after")
    def _arguments_of_offered_tools(self) -> AgentSettings:
        unknown = sorted(set(self.tool_arguments) - set(self.tools))
        if unknown and self.tools:
            raise ValueError(f"tool_arguments names tools that are not in tools: {', '.join(unknown)}")
        return self

    @property
    def suite_sizes(self) -> dict[str, int]:
        """Suite sizes the settings fix (a suite not listed keeps its default)."""
        sizes = {"train": self.train_suite_size, "heldout": self.heldout_suite_size}
        return {name: size for name, size in sizes.items() if size}

    @property
    def resolved_eval_trace_dir(self) -> Path:
        return self.eval_trace_dir or self.home / "agent" / "eval-traces"

    @property
    def resolved_eval_cache_dir(self) -> Path:
        return self.eval_cache_dir or self.home / "agent" / "evals"
