"""Demonstration traces: each template's reference solution replayed through the real gateway
tools (LocalGateway, chromium) against the served task site."""

import pytest

from tracewheel.agent.checking import reset_site
from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.replay import replay_task
from tracewheel.agent.tasks import TEMPLATES, load_suite
from tracewheel.agent.tool_schemas import REFERENCE_TOOL_ARGUMENTS, TASK_TOOLS
from tracewheel.agent.tools import LocalGateway
from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.trace import Verdict, validate_trace

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize("template", list(TEMPLATES))
async def test_replay_of_each_template_passes_and_validates(
    template: str, gateway: LocalGateway, site_url: str
) -> None:
    task = next(t for t in load_suite("train", 0, base_url=site_url) if t.template == template)
    await reset_site(site_url)
    config = LoopOptions(tools=TASK_TOOLS, guidance_prompt="Use the tools.", strip_guidance=True)
    tools = await gateway.open(TASK_TOOLS, config.result_char_limit)
    try:
        trace = await replay_task(task, tools, config=config, site_url=site_url)
    finally:
        await tools.close()
    validate_trace(trace.model_dump(mode="json"))
    assert trace.outcome.verdict == Verdict.PASSED, trace.outcome.detail
    assert trace.outcome.final_answer == task.answer
    assistants = [m for m in trace.messages if m.role == "assistant"]
    assert all(m.reasoning_content for m in assistants)
    assert all(len(m.tool_calls) == 1 for m in assistants[:-1]) and not assistants[-1].tool_calls
    assert all(m.tool_calls[0].id.startswith("chatcmpl-tool-") for m in assistants[:-1])
    assert trace.messages[0].role == "user" and trace.metadata.guidance_stripped
    assert {t.function.name for t in trace.tools} == set(TASK_TOOLS)
    assert trace.metadata.extra["tool_errors"] == "0"


async def test_replays_pass_with_the_demos_snapshots_and_the_smallest_offer(
    demo_gateway: LocalGateway, site_url: str
) -> None:
    # the demo's offer, with the request after every result (refs still resolve against the page),
    # and compact, incremental snapshots: refs not in a result of changes resolve in the page's
    # last whole snapshot, with no browser_snapshot turn
    config = LoopOptions(
        tools=TASK_TOOLS,
        tool_arguments=REFERENCE_TOOL_ARGUMENTS,
        argument_descriptions=False,
        task_reminder=True,
    )
    for template in TEMPLATES:
        task = next(t for t in load_suite("train", 0, base_url=site_url) if t.template == template)
        await reset_site(site_url)
        tools = await demo_gateway.open(TASK_TOOLS, config.result_char_limit)
        try:
            trace = await replay_task(task, tools, config=config, site_url=site_url)
        finally:
            await tools.close()
        assert trace.outcome.verdict == Verdict.PASSED, (template, trace.outcome.detail)
        results = [m.content for m in trace.messages if m.role == "tool"]
        assert all("/url:" not in r and "[cursor=pointer]" not in r for r in results), template
        assert all(r.endswith(f"\n\nTask: {task.prompt}") for r in results), template
        calls = [c.function.name for m in trace.messages for c in m.tool_calls]
        assert "browser_snapshot" not in calls, (template, calls)
        if template == "order_form":  # the filled form: the item page by its changes
            assert sum("- Page Snapshot changes" in r for r in results) == 1, results
        assert trace.metadata.extra["task_reminder"] == "true"
        click = next(t for t in trace.tools if t.function.name == "browser_click")
        assert click.function.parameters["properties"] == {"element": {"type": "string"}, "ref": {"type": "string"}}


async def test_a_reference_using_an_argument_not_offered_is_refused(gateway: LocalGateway, site_url: str) -> None:
    task = next(t for t in load_suite("train", 0, base_url=site_url) if t.template == "attribute_search")
    config = LoopOptions(tools=TASK_TOOLS, tool_arguments={"browser_type": ("element", "ref", "text")})
    tools = await gateway.open(TASK_TOOLS, config.result_char_limit)
    try:
        with pytest.raises(FailedPrecondition, match="uses browser_type arguments submit, which the model is not"):
            await replay_task(task, tools, config=config, site_url=site_url)
    finally:
        await tools.close()
