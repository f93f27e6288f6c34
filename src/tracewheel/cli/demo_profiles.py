"""The demo's two configurations: the embedded default (SmolLM2 on CPU) and `--quick` (CI).

A profile is only settings: the environment the stack's services start with and the limits
the demo waits under. Both run the same event-driven path; `--quick` swaps in the tiny random
test model, shrinks the suites and the training, and relaxes the deployment gate (the tiny
model cannot beat its baseline) — there and only there.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from tracewheel.agent.config import AgentSettings
from tracewheel.agent.tool_schemas import REFERENCE_TOOL_ARGUMENTS
from tracewheel.core.errors import InvalidArgument, TracewheelError
from tracewheel.core.settings import load_settings
from tracewheel.dataset.config import DatasetSettings
from tracewheel.gateway.config import GatewaySettings
from tracewheel.inference.config import InferenceSettings
from tracewheel.trainer.config import TrainerSettings
from tracewheel.trainer.recipe import ENV_PREFIX as RECIPE_PREFIX
from tracewheel.trainer.recipe import load_recipe

# The tools the demo offers, with only the arguments the references use and no argument descriptions:
# every request and training row pays for the offer (~515 tokens; bench/demo_tokens.py counts it).
DEMO_TOOLS = (
    "browser_navigate",
    "browser_snapshot",
    "browser_click",
    "browser_type",
    "browser_fill_form",
    "browser_tabs",
)


@dataclass(frozen=True)
class DemoProfile:
    """Settings of one demo configuration.

    Attributes:
        name: `full` or `quick`; the demo's state lives in `<home>/demo/<name>/`.
        env: environment of the stack's services (TW_<SERVICE>_* and TW_RECIPE_*).
        round_timeout_s: the longest a round (build, training, evaluation, deployment) may take.
        eval_timeout_s: the longest one suite run may take.
        rounds: self-improvement rounds after the demonstrations (1: demonstrations only).
        demonstrations: the train suite's first tasks that get a demonstration; the student of
            round 2 runs the others, so what it adds is tasks no demonstration covered (0: both
            run the whole train suite).
    """

    name: str
    env: dict[str, str] = field(default_factory=dict)
    round_timeout_s: float = 1800.0
    eval_timeout_s: float = 1800.0
    rounds: int = 2
    demonstrations: int = 0


def _common_env(*, heldout: int, train: int, max_steps: int, max_tokens: int) -> dict[str, str]:
    return {
        "TW_AGENT_HELDOUT_SUITE_SIZE": str(heldout),
        "TW_AGENT_TRAIN_SUITE_SIZE": str(train),
        "TW_AGENT_MAX_STEPS": str(max_steps),
        "TW_AGENT_MAX_TOKENS": str(max_tokens),
        "TW_AGENT_TEMPERATURE": "0",
        # the model acts without thinking: rows are trained without reasoning (TW_DATASET_REASONING)
        "TW_AGENT_ENABLE_THINKING": "false",
        "TW_AGENT_TOOLS": json.dumps(list(DEMO_TOOLS)),
        "TW_AGENT_TOOL_ARGUMENTS": json.dumps({t: REFERENCE_TOOL_ARGUMENTS[t] for t in DEMO_TOOLS}),
        "TW_AGENT_ARGUMENT_DESCRIPTIONS": "false",
        # the request after every tool result: late act-or-answer decisions depend on it (bench/heldout_probe.py)
        "TW_AGENT_TASK_REMINDER": "true",
        # pages as compact snapshots: half the tokens of @playwright/mcp's (gateway/browser/compact.py)
        "TW_GATEWAY_SNAPSHOT_STYLE": "compact",
        # not TW_GATEWAY_SNAPSHOT_MODE=incremental: its 8.5 % fewer row tokens bought neither time nor success
        # one build per suite run: the agent publishes a suite's traces together; any approved
        # trace is enough to build, the debounce gathers the burst
        "TW_DATASET_BUILD_THRESHOLD": "1",
        "TW_DATASET_BUILD_DEBOUNCE_S": "2",
        "TW_DATASET_EVAL_RATIO": "0",
        # rows without reasoning, the agent without thinking to match: a 135M model looped on `<think>`
        "TW_DATASET_REASONING": "false",
        # a demo row (tools, compact page snapshots, 3-7 steps) is 1.8-3.6k tokens; longer ones are dropped
        # (the trainer trains up to the length the dataset was built with)
        "TW_DATASET_MAX_LENGTH": "4096",
    }


def full_profile() -> DemoProfile:
    """SmolLM2-135M-Instruct on CPU (the embedded default)."""
    # twenty held-out tasks: one task is five points, the size of the round-2 goal (on ten it was ten points)
    env = _common_env(heldout=20, train=20, max_steps=8, max_tokens=160)
    env |= {
        "TW_AGENT_CONCURRENCY": "4",
        # four agents share two cores: an 8-step task takes up to ~10 min, and a cut run scores as a failure
        "TW_AGENT_TIME_LIMIT_S": "1200",
        # one optimizer step per demonstration, three passes: two lost held-out tasks, more cost time for no gain
        "TW_RECIPE_NUM_TRAIN_EPOCHS": "3",
        # a turn's act-or-answer token weighs more, the rarer answer most: unweighted it never answers (trainer/loss.py)
        "TW_RECIPE_DECISION_WEIGHT": "10",
        "TW_RECIPE_ANSWER_WEIGHT": "30",
        "TW_RECIPE_GRADIENT_ACCUMULATION_STEPS": "1",
        "TW_RECIPE_LEARNING_RATE": "0.001",
        # no LoRA dropout: PEFT's copy of each adapted layer's input makes a 3k-token step 1.36x (bench/train_step.py)
        "TW_RECIPE_LORA_DROPOUT": "0",
        # round 2 goes on from the deployed adapter (at lr 1e-3 it fell to 20 %, at 2e-4 it gained) over the
        # student's new rows and two replayed ones: 4 steps instead of 12, the same held-out success
        "TW_RECIPE_WARM_START_EPOCHS": "1",
        "TW_RECIPE_WARM_START_LEARNING_RATE": "0.0002",
        "TW_RECIPE_WARM_START_ROWS": "new",
        "TW_RECIPE_WARM_START_REPLAY": "2",
        # a run that makes the same call for the same result three times in a row is stuck (an
        # empty search typed again and again): it ends there instead of at the step limit
        "TW_AGENT_REPEAT_LIMIT": "3",
        # speculative decoding by prompt lookup: tool calls copy names and refs from the page just
        # read; three drafts a step made the held-out evaluation's requests 1.47x faster with the
        # same outputs (bench/speculative.py; docs/inference.md)
        "TW_INFERENCE_SPECULATIVE_TOKENS": "3",
        # rows of at most 4k tokens fit without activation checkpointing (~2.5 GB per 1k tokens in
        # bf16, ~3.6 GB in fp32); bf16 autocast without checkpointing trains 1.8x faster than fp32
        # with it on a CPU with bf16 instructions (AVX512-BF16 or AMX; bench/train_step.py), and
        # slower on one without
        "TW_RECIPE_GRADIENT_CHECKPOINTING": "false",
        "TW_RECIPE_BF16": "true" if cpu_computes_bf16() else "false",
        # serving in bf16 too, as the adapters were trained (autocast): with merged adapter weights
        # 1.73x the requests/s of fp32 through PEFT's per-row path on the held-out requests, 1 of 28
        # outputs different (bench/serving_paths.py; docs/inference.md)
        "TW_INFERENCE_DTYPE": "bfloat16" if cpu_computes_bf16() else "auto",
    }
    # a round: ~6-9 min of training (2 cores), then a held-out evaluation of up to ~15 min (four agents, two cores)
    return DemoProfile("full", env, round_timeout_s=2700.0, demonstrations=10)


def cpu_computes_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX-BF16); False when unknown."""
    try:
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def quick_profile(model_dir: Path) -> DemoProfile:
    """The tiny random test model: the same path in about a minute, asserted by CI."""
    env = _common_env(heldout=2, train=3, max_steps=2, max_tokens=8)
    env |= {
        "TW_INFERENCE_MODEL": str(model_dir),
        "TW_INFERENCE_DEPLOY_GATE": "always",  # only here: a random model cannot beat its baseline
        "TW_AGENT_CONCURRENCY": "3",
        "TW_RECIPE_MAX_STEPS": "2",
        "TW_RECIPE_GRADIENT_ACCUMULATION_STEPS": "1",
        "TW_RECIPE_EVAL": "false",
        "TW_RECIPE_SAVE_STEPS": "1",
    }
    return DemoProfile("quick", env, round_timeout_s=240.0, eval_timeout_s=240.0, rounds=2)


SERVICE_SETTINGS = (AgentSettings, DatasetSettings, GatewaySettings, InferenceSettings, TrainerSettings)
SETTING_PREFIXES = (*(str(s.model_config["env_prefix"]) for s in SERVICE_SETTINGS), RECIPE_PREFIX)
"""What a `--set` key starts with: a service's settings prefix or the recipe's."""
_ASSIGNMENT = re.compile(r"^(?P<key>[A-Z0-9_]+)=(?P<value>.*)$", re.DOTALL)


def with_settings(profile: DemoProfile, assignments: Sequence[str]) -> DemoProfile:
    """`profile` with `KEY=VALUE` service settings (`TW_<SERVICE>_*`, `TW_RECIPE_*`) over its own.

    Every setting is checked as the services and the trainer will read it, before anything starts.

    Raises:
        InvalidArgument: an assignment is not `KEY=VALUE` with a service's or the recipe's prefix,
            names no setting, or has a value its service refuses.
    """
    overrides: dict[str, str] = {}
    for assignment in assignments:
        match = _ASSIGNMENT.match(assignment)
        if match is None or not any(p != match["key"] and match["key"].startswith(p) for p in SETTING_PREFIXES):
            prefixes = ", ".join(f"{prefix}*" for prefix in SETTING_PREFIXES)
            raise InvalidArgument(f"--set {assignment!r}: expected KEY=VALUE with KEY a service setting ({prefixes})")
        overrides[match["key"]] = match["value"]
    env = {**profile.env, **overrides}
    try:
        with _environment(env):
            for settings in SERVICE_SETTINGS:
                load_settings(settings)
            load_recipe()
    except TracewheelError as exc:
        raise InvalidArgument(f"--set: {exc}") from None
    return replace(profile, env=env)


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `env` over it, as a service started with `env` would see it, then as it was."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
