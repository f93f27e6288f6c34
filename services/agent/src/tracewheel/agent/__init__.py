"""tracewheel agent service: the agent loop, demonstrations, evaluation, task site and suites."""

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.evaluation import evaluate
from tracewheel.agent.loop import AgentEvent, InferenceFailed, run_agent
from tracewheel.agent.replay import replay_task
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.tools import LocalGateway, SessionLost, ToolOutput, ToolSession, ToolSessionFactory

__all__ = [
    "AgentEvent",
    "AgentRunner",
    "InferenceFailed",
    "LocalGateway",
    "LoopOptions",
    "SessionLost",
    "ToolOutput",
    "ToolSession",
    "ToolSessionFactory",
    "evaluate",
    "replay_task",
    "run_agent",
]
