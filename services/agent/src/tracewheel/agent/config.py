"""Settings of the agent service (environment variables TW_AGENT_*).

The agent loop's options are declared once, in `conversation.LoopOptions`; the settings inherit
them, so `TW_AGENT_MAX_STEPS` sets `LoopOptions.max_steps` and the runner takes the settings as
the loop's options.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tracewheel.agent.conversation import LoopOptions
from tracewheel.core.settings import ServiceSettings


class AgentSettings(ServiceSettings, LoopOptions):
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
    suites_dir: Path | None = Field(
        default=None,
        description="Where registered suite files are kept (`tracewheel suites add`); "
        "default TRACEWHEEL_HOME/agent/suites.",
    )

    @property
    def suite_sizes(self) -> dict[str, int]:
        """Suite sizes the settings fix (a suite not listed keeps its default)."""
        sizes = {"train": self.train_suite_size, "heldout": self.heldout_suite_size}
        return {name: size for name, size in sizes.items() if size}

    @property
    def resolved_eval_trace_dir(self) -> Path:
        return self.eval_trace_dir or self.home / "agent" / "eval-traces"

    @property
    def resolved_suites_dir(self) -> Path:
        return self.suites_dir or self.home / "agent" / "suites"

    @property
    def resolved_eval_cache_dir(self) -> Path:
        return self.eval_cache_dir or self.home / "agent" / "evals"
