"""A team's own agent: the official `openai` and `mcp` packages and httpx, no tracewheel import.

What docs/bring-your-own.md shows. It runs one task: tools listed from an MCP endpoint (the
gateway's /mcp), the model asked through an OpenAI endpoint (the inference service's, capture
on), each tool call made over MCP and its result sent back, until the model answers; every call
carries the run's id in `X-Tracewheel-Trace-Id`, so the calls are one trace. Then it reports the
outcome its own check decided with `POST /v1/traces/{id}/complete`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from openai import AsyncOpenAI

TRACE_HEADER = "X-Tracewheel-Trace-Id"


def openai_tool(tool: Any) -> dict[str, Any]:
    """An MCP tool as an OpenAI function tool."""
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description or "", "parameters": tool.input_schema},
    }


async def run_task(
    openai_url: str, mcp_url: str, model: str, run_id: str, prompt: str, tools: set[str], max_steps: int = 8
) -> str:
    """Runs one task; returns the model's final answer ("" when it ran out of steps)."""
    llm = AsyncOpenAI(base_url=openai_url, api_key="unused", default_headers={TRACE_HEADER: run_id})
    async with streamable_http_client(mcp_url) as (read, write), ClientSession(read, write) as mcp:
        await mcp.initialize()
        offered = [openai_tool(t) for t in (await mcp.list_tools()).tools if t.name in tools]
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        for _ in range(max_steps):
            reply = await llm.chat.completions.create(model=model, messages=messages, tools=offered)  # type: ignore[arg-type]
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True, include={"role", "content", "tool_calls"}))
            if not message.tool_calls:
                await llm.close()
                return message.content or ""
            for call in message.tool_calls:
                result = await mcp.call_tool(call.function.name, json.loads(call.function.arguments or "{}"))
                text = "\n".join(part.text for part in result.content if part.type == "text")
                messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
    await llm.close()
    return ""


def report(openai_url: str, run_id: str, verdict: str, task: dict[str, str]) -> dict[str, Any]:
    """Completes the run's trace with the verdict the team's own check gave, and the suite task it was."""
    reply = httpx.post(f"{openai_url}/traces/{run_id}/complete", json={"verdict": verdict, "task": task}, timeout=30)
    reply.raise_for_status()
    return dict(reply.json())
