"""What the model is offered of a session's tools (tool_schemas.offered_tools) and how the loop
and the settings use it."""

import json

import pytest
from pydantic import ValidationError

from tracewheel.agent.config import AgentSettings
from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.loop import run_agent
from tracewheel.agent.testing import ScriptedLLM, StaticToolSession, assistant
from tracewheel.agent.tool_schemas import offered_tools
from tracewheel.core.errors import InvalidArgument
from tracewheel.core.trace import Verdict

CLICK = {
    "type": "function",
    "function": {
        "name": "browser_click",
        "description": "Perform click on a web page",
        "parameters": {
            "type": "object",
            "properties": {
                "element": {"type": "string", "description": "Human-readable element description"},
                "ref": {"type": "string", "description": "Exact target element reference"},
                "modifiers": {"type": "array", "items": {"type": "string", "enum": ["Alt", "Shift"]}},
            },
            "required": ["ref"],
            "additionalProperties": False,
        },
    },
}
FORM = {
    "type": "function",
    "function": {
        "name": "fill",
        "parameters": {
            "type": "object",
            "properties": {
                # a property called `description` is a name, not the keyword: it stays
                "description": {"type": "string", "description": "The text of the field called description"},
                "fields": {
                    "type": "object",
                    "description": "More fields",
                    "properties": {"description": {"type": "string", "description": "nested"}},
                },
            },
        },
    },
}


def test_all_tools_unchanged_by_default() -> None:
    assert offered_tools([CLICK, FORM]) == [CLICK, FORM]


def test_names_pick_tools_and_arguments_pick_properties() -> None:
    (click,) = offered_tools([CLICK, FORM], ["browser_click"], {"browser_click": ["element", "ref"]})

    assert list(click["function"]["parameters"]["properties"]) == ["element", "ref"]
    assert click["function"]["parameters"]["required"] == ["ref"]
    assert "modifiers" in CLICK["function"]["parameters"]["properties"]  # the input is a copy's source only


def test_without_descriptions_keeps_names_types_and_enums() -> None:
    click, form = offered_tools([CLICK, FORM], argument_descriptions=False)

    parameters = click["function"]["parameters"]
    assert parameters["properties"]["element"] == {"type": "string"}
    assert parameters["properties"]["modifiers"]["items"]["enum"] == ["Alt", "Shift"]
    assert "additionalProperties" not in parameters
    assert click["function"]["description"] == "Perform click on a web page"  # the tool's own stays
    fields = form["function"]["parameters"]["properties"]
    assert fields["description"] == {"type": "string"}
    assert fields["fields"] == {"type": "object", "properties": {"description": {"type": "string"}}}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"browser_click": ["element"]}, "browser_click requires 'ref'"),
        ({"browser_click": ["ref", "target"]}, "browser_click has no argument 'target'"),
        ({"fill": ["description"]}, "names tools that are not offered: fill"),
    ],
)
def test_arguments_that_do_not_fit_are_refused(arguments: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        offered_tools([CLICK, FORM], ["browser_click"], arguments)


async def test_the_loop_sends_the_offered_schemas_and_records_them() -> None:
    llm = ScriptedLLM([assistant("done")])
    tools = StaticToolSession()
    tools.tools = [CLICK]
    config = LoopOptions(tool_arguments={"browser_click": ("ref",)}, argument_descriptions=False)

    trace = await run_agent("click", llm=llm, model="m", tools=tools, config=config)

    sent = llm.requests[0]["tools"][0]["function"]["parameters"]
    assert sent == {"type": "object", "properties": {"ref": {"type": "string"}}, "required": ["ref"]}
    assert trace.tools[0].function.parameters == sent


async def test_a_config_that_does_not_fit_the_session_ends_the_run_with_an_error() -> None:
    llm = ScriptedLLM([assistant("done")])
    config = LoopOptions(tool_arguments={"browser_click": ("nope",)})

    trace = await run_agent("click", llm=llm, model="m", tools=StaticToolSession(), config=config)

    assert trace.outcome.verdict == Verdict.ERROR
    assert "browser_click has no argument 'nope'" in trace.outcome.detail
    assert trace.metadata.extra["stop_reason"] == "config_error" and not llm.requests


def test_settings_read_tool_arguments_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_AGENT_TOOL_ARGUMENTS", json.dumps({"browser_click": ["element", "ref"]}))
    monkeypatch.setenv("TW_AGENT_ARGUMENT_DESCRIPTIONS", "false")

    settings = AgentSettings()

    assert settings.tool_arguments == {"browser_click": ("element", "ref")}
    assert not settings.argument_descriptions


def test_settings_refuse_arguments_of_a_tool_not_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_AGENT_TOOLS", json.dumps(["browser_navigate"]))
    monkeypatch.setenv("TW_AGENT_TOOL_ARGUMENTS", json.dumps({"browser_click": ["ref"]}))

    with pytest.raises(ValidationError, match="not in tools: browser_click"):
        AgentSettings()
