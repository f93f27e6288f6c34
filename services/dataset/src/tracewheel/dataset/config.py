"""Settings of the dataset service (environment variables TW_DATASET_*).

The build's options (`max_length`, `eval_ratio`, `split_seed`, `reasoning`) are declared once, in
`build_options.BuildOptions`; the settings inherit them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tracewheel.core.http_security import HttpOptions
from tracewheel.core.settings import ServiceSettings
from tracewheel.dataset.build_options import BuildOptions


class DatasetSettings(ServiceSettings, BuildOptions, HttpOptions):
    model_config = SettingsConfigDict(env_prefix="TW_DATASET_", extra="forbid", frozen=True)

    grpc_port: int = Field(default=50054, ge=0, le=65535, description="gRPC port.")
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    http_port: int = Field(default=8300, ge=0, le=65535, description="HTTP port.")
    store_path: Path | None = Field(
        default=None, description="The SQLite trace store; default `<home>/dataset/traces.sqlite`."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="A PostgreSQL URL (postgresql://user:password@host:5432/db): the trace store is there instead "
        "of the SQLite file, and several dataset replicas may share it. A server that cannot be reached at start "
        "stops the service with the reason.",
    )
    artifacts_dir: Path | None = Field(
        default=None, description="Where versioned dataset directories are written; default `<home>/datasets`."
    )
    attachments_dir: Path | None = Field(
        default=None,
        description="The gateway's attachments directory (screenshots): the UI shows and serves files under it"
        " only; default `<home>/gateway/attachments`, the gateway's own default.",
    )
    base_model: str = Field(
        default="",
        description="Directory of the base model whose tokenizer builds use (recorded in the manifest);"
        " a build without it is refused.",
    )
    chat_template: str = Field(
        default="",
        description="The training chat template: '' for the base model family's (tracewheel.core.chat"
        " resolve_chat_format, as the trainer and inference resolve it), a template name shipped in"
        " tracewheel.core.chat, or a path to a .jinja file; it must mark assistant turns with {% generation %}.",
    )
    trainer_address: str = Field(
        default="",
        description="The trainer's gRPC address (host:port) the console reads jobs from and cancels them through;"
        " '' leaves the console's job pages saying so.",
    )
    inference_address: str = Field(
        default="",
        description="The inference service's gRPC address the console reads deployments and models from, and"
        " deploys, rolls back and moves the alias through; '' leaves those pages saying so.",
    )
    agent_address: str = Field(
        default="",
        description="The agent's gRPC address the console reads suites and evaluation traces from; '' leaves"
        " those pages saying so.",
    )
    reports_dir: Path | None = Field(
        default=None,
        description="Where `tracewheel eval --report` and the demo write their reports; the console lists and"
        " serves the files under it only; default `<home>/reports`.",
    )
    build_threshold: int = Field(
        default=20, ge=1, description="Approved traces not in the last build that trigger an automatic build."
    )
    build_debounce_s: float = Field(
        default=5.0,
        ge=0.0,
        description="Quiet time after the last ingest before the trigger checks (one build per burst).",
    )

    @property
    def resolved_store_path(self) -> Path:
        return self.store_path or self.home / "dataset" / "traces.sqlite"

    def store_location(self) -> str | Path:
        """Where the trace store is: the PostgreSQL URL when one is set, else the SQLite file."""
        return self.database_url.get_secret_value() if self.database_url else self.resolved_store_path

    @property
    def resolved_attachments_dir(self) -> Path:
        return self.attachments_dir or self.home / "gateway" / "attachments"

    @property
    def resolved_reports_dir(self) -> Path:
        return self.reports_dir or self.home / "reports"

    @property
    def resolved_artifacts_dir(self) -> Path:
        return self.artifacts_dir or self.home / "datasets"
