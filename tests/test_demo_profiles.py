"""The demo's profiles are only settings: every value must be one the services accept."""

import io
import json
import os
import re
from pathlib import Path

import pytest
from rich.console import Console

from tracewheel.agent.config import AgentSettings
from tracewheel.agent.tool_schemas import offered_tools
from tracewheel.cli.__main__ import main
from tracewheel.cli.demo import Demo
from tracewheel.cli.demo_profiles import DEMO_TOOLS, cpu_computes_bf16, full_profile, quick_profile, with_settings
from tracewheel.core.errors import FailedPrecondition, InvalidArgument
from tracewheel.dataset.config import DatasetSettings
from tracewheel.gateway.config import GatewaySettings
from tracewheel.inference.config import InferenceSettings
from tracewheel.trainer.recipe import load_recipe


@pytest.mark.parametrize("make", [full_profile, lambda: quick_profile(Path("/models/tiny"))])
def test_every_setting_of_a_profile_is_accepted(make, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = make()
    for key, value in profile.env.items():
        monkeypatch.setenv(key, value)

    agent, gateway = AgentSettings(), GatewaySettings()
    DatasetSettings(), InferenceSettings()
    recipe = load_recipe()

    assert gateway.snapshot_style == "compact"
    assert agent.tools == DEMO_TOOLS and not agent.argument_descriptions
    assert set(agent.tool_arguments) == set(DEMO_TOOLS)
    assert agent.task_reminder  # runs and demonstrations both end results with the request
    # one setting says the row length: the build's, which the trainer takes from the manifest
    assert DatasetSettings().max_length == 4096 and "max_length" not in recipe.model_dump()


def test_the_full_profile_trains_without_checkpointing_and_in_bf16_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in full_profile().env.items():
        monkeypatch.setenv(key, value)
    recipe = load_recipe()

    assert recipe.gradient_checkpointing is False
    assert recipe.bf16 is cpu_computes_bf16()


def test_cpu_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert cpu_computes_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert not cpu_computes_bf16(cpuinfo)
    assert not cpu_computes_bf16(tmp_path / "missing")


def test_the_offered_arguments_fit_the_gateways_own_schemas() -> None:
    from tracewheel.gateway.browser.registry import select_tools
    from tracewheel.gateway.openai_tools import to_openai_tools

    agent_env = full_profile().env
    tools = to_openai_tools(select_tools(DEMO_TOOLS)).tools
    arguments = {k: tuple(v) for k, v in json.loads(agent_env["TW_AGENT_TOOL_ARGUMENTS"]).items()}

    offered = offered_tools(tools, DEMO_TOOLS, arguments, argument_descriptions=False)

    assert [t["function"]["name"] for t in offered] == list(DEMO_TOOLS)


@pytest.mark.parametrize("make", [full_profile, lambda: quick_profile(Path("/models/tiny"))])
def test_the_student_gets_train_tasks_no_demonstration_covered(make) -> None:
    profile = make()
    train_size = int(profile.env["TW_AGENT_TRAIN_SUITE_SIZE"])
    # 0: demonstrations and student both run the whole train suite (the tiny quick suites)
    assert profile.demonstrations == 0 or 0 < profile.demonstrations < train_size


def test_set_puts_a_service_setting_over_the_profiles() -> None:
    before = dict(os.environ)

    profile = with_settings(full_profile(), ["TW_RECIPE_NUM_TRAIN_EPOCHS=5", "TW_AGENT_MAX_STEPS=6"])

    assert profile.env["TW_RECIPE_NUM_TRAIN_EPOCHS"] == "5" and profile.env["TW_AGENT_MAX_STEPS"] == "6"
    assert profile.env["TW_GATEWAY_SNAPSHOT_STYLE"] == "compact"  # the rest is the profile's
    assert dict(os.environ) == before  # checked without leaving anything behind


@pytest.mark.parametrize(
    ("assignment", "says"),
    [
        ("EPOCHS=5", "expected KEY=VALUE with KEY a service setting"),
        ("TW_RECIPE_NUM_TRAIN_EPOCHS", "expected KEY=VALUE"),
        ("TW_RECIPE_EPOCHS=5", "unknown recipe override TW_RECIPE_EPOCHS"),
        ("TW_AGENT_MAX_STEP=5", "unknown setting(s) TW_AGENT_MAX_STEP"),
        ("TW_AGENT_MAX_STEPS=many", "TW_AGENT_MAX_STEPS"),
        ("TW_GATEWAY_SNAPSHOT_MODE=diff", "TW_GATEWAY_SNAPSHOT_MODE"),
    ],
)
def test_set_refuses_what_no_service_would_accept(assignment: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(says)):
        with_settings(full_profile(), [assignment])


def test_a_demo_continues_only_with_the_settings_it_began_with(tmp_path: Path) -> None:
    profile, console = full_profile(), Console(file=io.StringIO())
    Demo(profile, tmp_path, console).keep_settings(["TW_RECIPE_NUM_TRAIN_EPOCHS=5"])

    Demo(profile, tmp_path, console).keep_settings(["TW_RECIPE_NUM_TRAIN_EPOCHS=5"])  # the same: goes on
    with pytest.raises(FailedPrecondition, match="began with --set TW_RECIPE_NUM_TRAIN_EPOCHS=5"):
        Demo(profile, tmp_path, console).keep_settings([])


def test_a_demo_begun_without_settings_refuses_them_later(tmp_path: Path) -> None:
    profile, console = full_profile(), Console(file=io.StringIO())
    Demo(profile, tmp_path, console).state.record("baseline", {"success_rate": 0.0})  # an older run's state

    Demo(profile, tmp_path, console).keep_settings([])
    with pytest.raises(FailedPrecondition, match="began with --set none"):
        Demo(profile, tmp_path, console).keep_settings(["TW_AGENT_MAX_STEPS=6"])


def test_the_demo_refuses_a_bad_setting_before_it_starts_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACEWHEEL_HOME", str(tmp_path))

    with pytest.raises(SystemExit) as exited:
        main(["demo", "--set", "TW_RECIPE_NUM_TRAIN_EPOCHS=many"])

    assert exited.value.code == 2  # a usage error (docs/cli.md), on stderr
    assert "--set: invalid recipe: num_train_epochs" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no stack, no state
