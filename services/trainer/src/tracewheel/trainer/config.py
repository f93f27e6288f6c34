"""Settings of the trainer service (environment variables TW_TRAINER_*).

The training recipe has its own variables (TW_RECIPE_*) and an optional file (`recipe_path`, see recipe.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.settings import ServiceSettings
from tracewheel.trainer.evaluation import EvalTarget


class TrainerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TW_TRAINER_", extra="forbid", frozen=True)

    grpc_port: int = Field(default=50055, ge=0, le=65535, description="gRPC port.")
    state_dir: Path | None = Field(default=None, description="Where jobs.json lives; default TRACEWHEEL_HOME/trainer.")
    adapters_dir: Path | None = Field(
        default=None,
        description="Each job trains into <adapters_dir>/<job id>/ (checkpoints, tensorboard, adapter); "
        "default TRACEWHEEL_HOME/adapters.",
    )
    models_dir: Path | None = Field(
        default=None,
        description="Base models by name: a dataset's base_model X trains <models_dir>/X unless X is a folder "
        "path; default TRACEWHEEL_HOME/models.",
    )
    base_model_dir: Path | None = Field(
        default=None, description="When set, every job trains this HF model folder whatever its dataset names."
    )
    recipe_path: Path | None = Field(
        default=None,
        description="A recipe YAML file (option: value); TW_RECIPE_* variables override it, and options in "
        "neither keep the defaults declared in recipe.Recipe.",
    )
    events: bool = Field(default=True, description="Consume datasets.v1.built and publish events over NATS.")
    isolate: bool = Field(
        default=True,
        description="Train in a child process: an out-of-memory kill then fails the job, not the service.",
    )
    agent_address: str = Field(
        default="",
        description="Agent gRPC address that evaluates each trained adapter on the held-out suite; "
        "empty: adapters are published without an evaluation (a strict deployment gate keeps them out).",
    )
    inference_address: str = Field(
        default="127.0.0.1:50051", description="Inference gRPC address that serves the adapter being evaluated."
    )
    deploy_alias: str = Field(
        default="agent",
        description="The inference alias whose adapter a warm start continues (recipe warm_start_epochs).",
    )
    eval_suite: str = Field(default="heldout", description="The suite adapters and their base model are scored on.")
    eval_concurrency: int = Field(default=0, ge=0, description="Tasks at once in an evaluation (0: the agent's).")
    eval_timeout_s: float = Field(default=3600.0, gt=0, description="The longest one evaluation may take.")

    def eval_target(self) -> EvalTarget | None:
        """Where adapters are evaluated; None when no agent is configured."""
        if not self.agent_address:
            return None
        return EvalTarget(
            agent_address=self.agent_address,
            inference_address=self.inference_address,
            suite=self.eval_suite,
            concurrency=self.eval_concurrency,
            timeout_s=self.eval_timeout_s,
            token=self.auth_token.get_secret_value() if self.auth_token else None,
        )

    def resolved_state_dir(self) -> Path:
        return self.state_dir or self.home / "trainer"

    def resolved_adapters_dir(self) -> Path:
        return self.adapters_dir or self.home / "adapters"

    def resolve_base_model(self, name: str) -> Path:
        """The HF folder to train for a dataset's `base_model`.

        Raises:
            FailedPrecondition: the dataset names no base model and none is configured.
        """
        if self.base_model_dir is not None:
            return self.base_model_dir
        if not name:
            raise FailedPrecondition("the dataset names no base_model; set TW_TRAINER_BASE_MODEL_DIR")
        if name and Path(name).is_dir():
            return Path(name)
        return (self.models_dir or self.home / "models") / name
