"""Entrypoint: `python -m tracewheel.agent`.

Embedded default: serves the bundled task site on 8400 (TW_AGENT_SERVE_TASK_SITE), calls
inference at TW_AGENT_INFERENCE_URL and the gateway at TW_AGENT_GATEWAY_ADDRESS (empty: the
gateway's browser runs in this process), publishes traces to NATS (TW_AGENT_PUBLISH_TRACES)
and writes them to TW_AGENT_TRACE_DIR when set.
"""

from __future__ import annotations

import contextlib
import logging

import openai

from tracewheel.agent.config import AgentSettings
from tracewheel.agent.eval_cache import EvalCache
from tracewheel.agent.events import EvalTraceFiles, TraceOutput
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.server import AgentServicer
from tracewheel.agent.suites.checks import InferenceEndpoint
from tracewheel.agent.tasksite import create_app
from tracewheel.agent.tools import LocalGateway, ToolSessionFactory
from tracewheel.core.events import connect, ensure_streams
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.http_server import HttpServer
from tracewheel.core.nats_auth import declared_streams
from tracewheel.core.service import Cleanup, service_main
from tracewheel.v1 import agent_pb2_grpc

log = logging.getLogger(__name__)


async def _tool_factory(settings: AgentSettings, stack: contextlib.AsyncExitStack) -> ToolSessionFactory:
    if settings.gateway_address:
        from tracewheel.agent.gateway_client import GatewayClient

        token = settings.auth_token.get_secret_value() if settings.auth_token else None
        client = GatewayClient(settings.gateway_address, token=token, session_wait_s=settings.gateway_session_wait_s)
        stack.push_async_callback(client.close)
        return client
    from tracewheel.gateway.config import GatewaySettings
    from tracewheel.gateway.session import SessionManager

    # the in-process browser reads the gateway's own settings (TW_GATEWAY_*: URL policy, snapshot style...)
    manager = await stack.enter_async_context(SessionManager(GatewaySettings().browser_config()))
    return LocalGateway(manager, session_wait_s=settings.gateway_session_wait_s)


async def setup(settings: AgentSettings, server: GrpcServer) -> Cleanup:
    """Builds the runner (site, tools, inference client, trace output) and registers the servicer."""
    stack = contextlib.AsyncExitStack()
    try:
        runner = await _runner(settings, stack)
    except BaseException:
        await stack.aclose()
        raise
    servicer = AgentServicer(runner, eval_trace_dir=settings.resolved_eval_trace_dir)
    agent_pb2_grpc.add_AgentServicer_to_server(servicer, server.server)
    return stack.aclose


async def _runner(settings: AgentSettings, stack: contextlib.AsyncExitStack) -> AgentRunner:
    if settings.serve_task_site:
        app = create_app(settings.task_site_seed, settings.task_site_items)
        site = HttpServer(app, "127.0.0.1", settings.task_site_port)
        await site.start()
        stack.push_async_callback(site.stop)
        log.info("serving the task site on port %d", site.port)
    factory = await _tool_factory(settings, stack)
    llm = openai.AsyncOpenAI(base_url=settings.inference_url, api_key=settings.inference_api_key, max_retries=0)
    stack.push_async_callback(llm.close)
    js = None
    if settings.publish_traces:
        client, js = await connect(settings.nats_url, "agent", settings)
        await ensure_streams(js, declared_streams(settings.nats_user), settings.nats_stream_replicas)
        stack.push_async_callback(client.close)
    return AgentRunner(
        llm=llm,
        factory=factory,
        config=settings,  # the settings are the loop's options (AgentSettings inherits LoopOptions)
        default_model=settings.model,
        site_url=settings.task_site_url,
        seed=settings.task_site_seed,
        n_items=settings.task_site_items,
        concurrency=settings.concurrency,
        on_trace=TraceOutput(
            js, settings.trace_dir, max_trace_bytes=settings.max_trace_bytes, rejected_home=settings.home
        ),
        suite_sizes=settings.suite_sizes,
        eval_cache=EvalCache(settings.resolved_eval_cache_dir),
        on_eval_trace=EvalTraceFiles(settings.resolved_eval_trace_dir) if settings.keep_eval_traces else None,
        suites_dir=settings.resolved_suites_dir,
        inference=InferenceEndpoint(settings.inference_url, settings.inference_api_key),
    )


def main() -> None:
    service_main("agent", AgentSettings, ["tracewheel.v1.Agent"], setup)


if __name__ == "__main__":
    main()
