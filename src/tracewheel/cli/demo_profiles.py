"""The demo's two configurations: the embedded default (SmolLM2 on CPU) and `--quick` (CI).

A profile is only settings: the environment the stack's services start with and the limits
the demo waits under. Both run the same event-driven path; `--quick` swaps in the tiny random
test model, shrinks the suites and the training, and relaxes the deployment gate (the tiny
model cannot beat its baseline) — there and only there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# The tools the demo offers the model. Every one costs ~100-200 prompt tokens in every request
# and every training row; these are the ones the reference solutions use.
DEMO_TOOLS = (
    "browser_navigate",
    "browser_snapshot",
    "browser_click",
    "browser_type",
    "browser_select_option",
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
    """

    name: str
    env: dict[str, str] = field(default_factory=dict)
    round_timeout_s: float = 1800.0
    eval_timeout_s: float = 1800.0
    rounds: int = 2


def _common_env(*, heldout: int, train: int, max_steps: int, max_tokens: int) -> dict[str, str]:
    return {
        "TW_AGENT_HELDOUT_SUITE_SIZE": str(heldout),
        "TW_AGENT_TRAIN_SUITE_SIZE": str(train),
        "TW_AGENT_MAX_STEPS": str(max_steps),
        "TW_AGENT_MAX_TOKENS": str(max_tokens),
        "TW_AGENT_TEMPERATURE": "0",
        "TW_AGENT_TOOLS": json.dumps(list(DEMO_TOOLS)),
        # one build per suite run: the agent publishes a suite's traces together; any approved
        # trace is enough to build, the debounce gathers the burst
        "TW_DATASET_BUILD_THRESHOLD": "1",
        "TW_DATASET_BUILD_DEBOUNCE_S": "2",
        "TW_DATASET_EVAL_RATIO": "0",
        # a demo row (tools, page snapshots, 3-6 steps) is 3-5k tokens; longer rows are dropped
        "TW_DATASET_MAX_LENGTH": "6144",
        "TW_RECIPE_MAX_LENGTH": "6144",
    }


def full_profile() -> DemoProfile:
    """SmolLM2-135M-Instruct on CPU (the embedded default)."""
    env = _common_env(heldout=10, train=10, max_steps=6, max_tokens=160)
    env |= {
        "TW_AGENT_CONCURRENCY": "4",
        "TW_RECIPE_NUM_TRAIN_EPOCHS": "2",
        "TW_RECIPE_LEARNING_RATE": "0.0005",
        # a 5k-token row without activation checkpointing took the trainer past 15 GB (OOM-killed
        # on a 24 GiB machine); with it, ~5.5 GB (docs/demo.md)
        "TW_RECIPE_GRADIENT_CHECKPOINTING": "true",
    }
    return DemoProfile("full", env)


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
