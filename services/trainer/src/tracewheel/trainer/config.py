"""Settings of the trainer service (environment variables TW_TRAINER_*).

Where adapters are evaluated (`agent_address`, `eval_suite`...) is declared once, in
`evaluation.EvalOptions`, and where training runs (`runner`, `job_template`...), in
`k8s_runner.KubernetesOptions`; the settings inherit both. The training recipe has its own variables
(TW_RECIPE_*) and an optional file (`recipe_path`, see recipe.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.settings import ServiceSettings
from tracewheel.trainer.evaluation import EvalOptions, EvalTarget
from tracewheel.trainer.k8s_runner import KubernetesOptions


class TrainerSettings(ServiceSettings, EvalOptions, KubernetesOptions):
    model_config = SettingsConfigDict(env_prefix="TW_TRAINER_", extra="forbid", frozen=True)

    grpc_port: int = Field(default=50055, ge=0, le=65535, description="gRPC port.")
    state_dir: Path | None = Field(default=None, description="Where jobs.json lives; default TRACEWHEEL_HOME/trainer.")
    adapters_dir: Path | None = Field(
        default=None,
        description="Each job trains into <adapters_dir>/<job id>/ (checkpoints, tensorboard, adapter); "
        "default TRACEWHEEL_HOME/adapters.",
    )
    datasets_dir: Path | None = Field(
        default=None,
        description="Where the dataset service writes its builds (its artifacts_dir, shared): a datasets.v1.built "
        "event naming a folder outside it is refused; default TRACEWHEEL_HOME/datasets.",
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
    deploy_alias: str = Field(
        default="agent",
        description="The inference alias whose adapter a warm start continues (recipe warm_start_epochs).",
    )

    def eval_target(self) -> EvalTarget | None:
        """Where adapters are evaluated; None when no agent is configured."""
        if not self.agent_address:
            return None
        options = {name: getattr(self, name) for name in EvalOptions.model_fields}
        return EvalTarget(**options, token=self.auth_token.get_secret_value() if self.auth_token else None)

    def resolved_state_dir(self) -> Path:
        return self.state_dir or self.home / "trainer"

    def resolved_adapters_dir(self) -> Path:
        return self.adapters_dir or self.home / "adapters"

    def resolved_datasets_dir(self) -> Path:
        return self.datasets_dir or self.home / "datasets"

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
