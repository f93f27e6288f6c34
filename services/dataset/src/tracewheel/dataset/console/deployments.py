"""The console's deployment pages: what is served, every gate decision, and moving the alias.

| path | shows / does |
|---|---|
| `/console/deployments` | served models and aliases (ListModels), every gate decision (ListDeployments) |
| `/console/deployments/{adapter}` | one decision (ExplainDeployment): both evaluations, gate, split, |
| | the tasks won and lost with both runs' traces |
| `/console/runs/{trace_id}` | an evaluation run's trace, read-only (the agent's GetEvalTrace) |
| `POST /console/api/alias/move` | `{alias, target}`: points the alias at a served model (SetAlias) |
| `POST /console/api/alias/rollback` | `{alias}`: moves the alias back to its previous target (Rollback) |

Evaluation traces never enter the store (held-out tasks must not feed a build): the run page asks the
agent for them. Deploying an adapter from its page is a move of the decision's alias to it.
Moves and rollbacks act on the inference replica the console talks to (`TW_DATASET_INFERENCE_ADDRESS`)
only: they are not published, so other replicas keep their target until the next gate decision.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from tracewheel.core.errors import InvalidArgument, NotFound
from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.evaluation_proto import eval_result_from_proto
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.dataset.console.context import ConsoleContext
from tracewheel.dataset.console.gate_view import (
    TaskPair,
    compare_tasks,
    figure_rows,
    path_part,
    template_rows,
)
from tracewheel.dataset.console.peers import PEER_DOWN
from tracewheel.dataset.trace_view import message_views, pretty_json
from tracewheel.v1 import inference_pb2

REPLICA_NOTE = (
    "A move or rollback is made on the inference replica the console is connected to "
    "(TW_DATASET_INFERENCE_ADDRESS), which publishes it on models.v1.deployed: every other replica "
    "follows it, one that is down when it comes back."
)


class AliasMove(BaseModel):
    alias: str = Field(min_length=1, max_length=200)
    target: str = Field(min_length=1, max_length=200)


class AliasRollback(BaseModel):
    alias: str = Field(min_length=1, max_length=200)


def _evaluation(message: inference_pb2.Deployment, field: Literal["candidate", "compared_with"]) -> EvalResult | None:
    return eval_result_from_proto(getattr(message, field)) if message.HasField(field) else None


def _success(result: EvalResult | None) -> str:
    return f"{result.success_rate:.1%} ({result.solved}/{result.tasks})" if result else ""


def _decision_row(message: inference_pb2.Deployment) -> dict[str, Any]:
    candidate, compared = _evaluation(message, "candidate"), _evaluation(message, "compared_with")
    return {
        "adapter": message.adapter_name,
        "url": f"/console/deployments/{path_part(message.adapter_name)}",
        "deployed": message.deployed,
        "alias": message.alias,
        "previous": message.previous_target,
        "candidate_success": _success(candidate),
        "compared_success": _success(compared),
        "reason": message.reason,
    }


def _aliases(models: list[inference_pb2.ServedModel]) -> dict[str, Any]:
    """The aliases with their targets, and the models an alias can point at."""
    return {
        "models": [{"name": m.name, "kind": m.kind, "target": m.target, "path": m.path} for m in models],
        "aliases": [{"name": m.name, "target": m.target} for m in models if m.kind == "alias"],
        "targets": [m.name for m in models if m.kind != "alias"],
        "replica_note": REPLICA_NOTE,
    }


def _run_url(result: TaskResult | None, adapter: str) -> str:
    if result is None or not result.trace_id:
        return ""
    return f"/console/runs/{path_part(result.trace_id)}?adapter={path_part(adapter)}"


def _pair_view(pair: TaskPair, adapter: str) -> dict[str, Any]:
    def side(result: TaskResult | None) -> dict[str, Any]:
        if result is None:
            return {"verdict": "not run", "detail": "", "steps": "", "url": ""}
        return {"verdict": result.verdict or ("passed" if result.passed else "failed"), "detail": result.detail,
                "steps": result.steps, "url": _run_url(result, adapter)}  # fmt: skip

    return {"task_id": pair.task_id, "template": pair.template, "candidate": side(pair.candidate),
            "compared": side(pair.compared)}  # fmt: skip


def _gate_view(message: inference_pb2.Deployment) -> dict[str, str] | None:
    """The gate's mode and the threshold it reads (None: decided before decisions kept their gate)."""
    if not message.HasField("gate"):
        return None
    gate = message.gate
    threshold = {"strict": f"success gain > {gate.min_gain:g}", "paired": f"one-sided p <= {gate.max_p:g}"}
    return {"mode": gate.mode, "threshold": threshold.get(gate.mode, "none")}


def _split_counts(split: inference_pb2.PairedSplit) -> dict[str, int]:
    return {"won": split.won, "lost": split.lost, "both": split.both}


def _decision_context(message: inference_pb2.Deployment) -> dict[str, Any]:
    """The decision page's figures, gate, split and the tasks won and lost."""
    candidate, compared = _evaluation(message, "candidate"), _evaluation(message, "compared_with")
    comparison = None
    if message.HasField("split") and candidate is not None and compared is not None:
        comparison = compare_tasks(candidate, compared)  # the gate judged them comparable task by task
    adapter = message.adapter_name
    split = message.split if message.HasField("split") else None
    return {
        "decision": _decision_row(message),
        "has_candidate": candidate is not None,
        "has_compared": compared is not None,
        "figures": figure_rows(candidate, compared),
        "templates": template_rows(candidate, compared),
        "gate": _gate_view(message),
        "split": None if split is None else {**_split_counts(split), "p": f"{split.p_greater:.3f}"},
        "won": [_pair_view(p, adapter) for p in comparison.won] if comparison else [],
        "lost": [_pair_view(p, adapter) for p in comparison.lost] if comparison else [],
        "listed": comparison is not None,
    }


def add_routes(app: FastAPI, ctx: ConsoleContext) -> None:
    """Adds the deployment pages, the run page and the alias actions to `app`."""

    @app.get("/console/deployments", response_class=HTMLResponse, include_in_schema=False)
    async def deployments_page(request: Request) -> HTMLResponse:
        context: dict[str, Any] = {**_aliases([]), "decisions": [], "peer_message": ""}
        try:
            context.update(_aliases(await ctx.peers.list_models()))
            context["decisions"] = [_decision_row(d) for d in reversed(await ctx.peers.list_deployments())]
        except PEER_DOWN as exc:
            return ctx.render(request, "console/deployments.html", {**context, "peer_message": str(exc)}, 503)
        return ctx.render(request, "console/deployments.html", context)

    @app.get("/console/deployments/{adapter_name}", response_class=HTMLResponse, include_in_schema=False)
    async def deployment_page(request: Request, adapter_name: str) -> HTMLResponse:
        return await _deployment_page(ctx, request, adapter_name)

    @app.get("/console/runs/{trace_id}", response_class=HTMLResponse, include_in_schema=False)
    async def run_page(request: Request, trace_id: str, adapter: str = "") -> HTMLResponse:
        return await _run_page(ctx, request, trace_id, adapter)

    @app.post("/console/api/alias/move", include_in_schema=False)
    async def move_alias(body: AliasMove) -> dict[str, str]:
        moved = await ctx.peers.set_alias(body.alias, body.target)
        return {"message": f"alias {moved.alias}: {moved.previous_target or '(new)'} -> {moved.target}"}

    @app.post("/console/api/alias/rollback", include_in_schema=False)
    async def roll_back_alias(body: AliasRollback) -> dict[str, str]:
        moved = await ctx.peers.rollback(body.alias)
        return {"message": f"alias {moved.alias}: {moved.previous_target} -> {moved.target} (rolled back)"}


async def _deployment_page(ctx: ConsoleContext, request: Request, adapter_name: str) -> HTMLResponse:
    """One decision; an adapter the gate never saw is a 404 page, an unreachable peer a notice."""
    base: dict[str, Any] = {"adapter": adapter_name, "missing": "", "peer_message": "", **_aliases([])}
    try:
        message = await ctx.peers.explain_deployment(adapter_name)
        base.update(_aliases(await ctx.peers.list_models()))
    except NotFound as exc:
        return ctx.render(request, "console/deployment.html", {**base, "missing": str(exc)}, 404)
    except PEER_DOWN as exc:
        return ctx.render(request, "console/deployment.html", {**base, "peer_message": str(exc)}, 503)
    context = {**base, **_decision_context(message)}
    alias_target = next((a["target"] for a in base["aliases"] if a["name"] == message.alias), "")
    context["alias_target"] = alias_target
    context["can_deploy"] = adapter_name in base["targets"] and alias_target != adapter_name
    return ctx.render(request, "console/deployment.html", context)


async def _run_page(ctx: ConsoleContext, request: Request, trace_id: str, adapter: str) -> HTMLResponse:
    """An evaluation run's trace from the agent; unknown: 404, not a trace file name: 400, agent down: 503."""
    base: dict[str, Any] = {"trace_id": trace_id, "missing": "", "peer_message": "", "trace": None}
    if adapter:
        base.update(back_url=f"/console/deployments/{path_part(adapter)}", back_label="Back to the deployment")
    else:
        base.update(back_url="/console/deployments", back_label="All deployments")
    try:
        trace = trace_from_proto(await ctx.peers.get_eval_trace(trace_id))
    except (NotFound, InvalidArgument) as exc:
        return ctx.render(request, "console/run.html", {**base, "missing": str(exc)}, exc.http_status)
    except PEER_DOWN as exc:
        return ctx.render(request, "console/run.html", {**base, "peer_message": str(exc)}, 503)
    task_url = ""
    if trace.task and trace.task.suite and trace.task.task_id:
        task_url = f"/console/suites/{path_part(trace.task.suite)}/tasks/{path_part(trace.task.task_id)}"
    context = {
        **base,
        "trace": trace,
        "task_url": task_url,
        "messages": message_views(trace, None),  # eval runs' screenshots are not in the attachments folder
        "metadata_json": pretty_json(trace.metadata.model_dump_json()),
        "tools_json": pretty_json(trace.model_dump_json(include={"tools"})),
    }
    return ctx.render(request, "console/run.html", context)
