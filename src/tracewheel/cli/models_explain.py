"""`tracewheel models explain NAME`: why inference's gate did or did not deploy an adapter.

It prints the decision inference recorded when `models.v1.trained` named the adapter: the gate
and its thresholds at that time, the adapter's held-out evaluation beside the one of the model
it was compared with (the alias's target then), the task-by-task split when both list their
tasks, and the gate's reason. Nothing is recomputed here.
"""

from __future__ import annotations

import argparse
from typing import Any, Literal

from rich.console import Console, Group
from rich.table import Table

from tracewheel.cli.endpoints import connect
from tracewheel.cli.exit_codes import OK
from tracewheel.cli.output import emit
from tracewheel.core.errors import InvalidArgument
from tracewheel.core.evaluation import EvalResult
from tracewheel.core.evaluation_proto import eval_result_from_proto
from tracewheel.inference.gate import DeployGate
from tracewheel.v1 import inference_pb2, inference_pb2_grpc

_FIGURES = (
    ("suite", "suite", "{}"),
    ("tasks", "tasks", "{}"),
    ("success_rate", "success", "{:.0%}"),
    ("valid_tool_call_rate", "valid tool calls", "{:.0%}"),
    ("right_tool_rate", "right tool", "{:.0%}"),
    ("mean_steps", "mean steps", "{:.1f}"),
    ("mean_tokens", "mean tokens", "{:.0f}"),
)


def deployment_json(deployment: inference_pb2.Deployment) -> dict[str, Any]:
    """The recorded decision as one JSON document (evaluations in `EvalResult`'s JSON form)."""
    gate, split = deployment.gate, deployment.split

    def result(field: Literal["candidate", "compared_with"]) -> dict[str, Any] | None:
        return (
            eval_result_from_proto(getattr(deployment, field)).model_dump(mode="json")
            if deployment.HasField(field)
            else None
        )

    return {
        "adapter": deployment.adapter_name,
        "alias": deployment.alias,
        "deployed": deployment.deployed,
        "previous_target": deployment.previous_target,
        "reason": deployment.reason,
        "gate": {"mode": gate.mode, "min_gain": gate.min_gain, "max_p": gate.max_p}
        if deployment.HasField("gate")
        else None,
        "candidate": result("candidate"),
        "compared_with": result("compared_with"),
        "split": {"won": split.won, "lost": split.lost, "both": split.both, "p_greater": split.p_greater}
        if deployment.HasField("split")
        else None,
    }


def _gate_words(gate: dict[str, Any] | None) -> str:
    if gate is None:
        return "not recorded (decided before decisions kept their gate)"
    return DeployGate(gate["mode"], gate["min_gain"], gate["max_p"]).describe()


def _figures_table(data: dict[str, Any]) -> Table:
    candidate, compared = data["candidate"], data["compared_with"]
    table = Table(title="held-out evaluations")
    table.add_column("figure")
    table.add_column(f"{data['adapter']} (candidate)")
    table.add_column(f"{data['previous_target']} (compared with)")
    results = [None if r is None else EvalResult.model_validate(r) for r in (candidate, compared)]
    for field, name, shown in _FIGURES:
        table.add_row(name, *("-" if r is None else shown.format(getattr(r, field)) for r in results))
    templates = dict.fromkeys(name for r in results if r is not None for name in r.success_by_template)
    for template in templates:
        cells = [f"{r.success_by_template[template]:.0%}" if r and template in r.success_by_template else "-"
                 for r in results]  # fmt: skip
        table.add_row(f"success: {template}", *cells)
    return table


def deployment_text(data: dict[str, Any]) -> Group:
    """The decision for a person: what happened, under which gate, on which figures, and why."""
    if data["deployed"]:
        verdict = f"deployed: alias {data['alias']} moved from {data['previous_target']} to {data['adapter']}"
    else:
        verdict = f"not deployed: alias {data['alias']} stayed on {data['previous_target']}"
    lines: list[Any] = [f"[bold]{data['adapter']}[/bold]: {verdict}", f"gate: {_gate_words(data['gate'])}"]
    if data["candidate"] is not None or data["compared_with"] is not None:
        lines.append(_figures_table(data))
    if (split := data["split"]) is not None:
        lines.append(
            f"task by task: won {split['won']}, lost {split['lost']}, both solved {split['both']} "
            f"(one-sided sign test p {split['p_greater']:.3f})"
        )
    lines.append(f"reason: {data['reason']}")
    return Group(*lines)


def models_explain(args: argparse.Namespace, console: Console) -> int:
    """Prints inference's recorded decision on adapter `args.name`.

    Raises:
        InvalidArgument: no adapter name was given.
        grpc.RpcError: NOT_FOUND when the gate was never given that adapter.
    """
    if not args.name:
        raise InvalidArgument("which adapter? `tracewheel models explain NAME` (`tracewheel models` lists them)")
    channel, metadata = connect("inference", args.address)
    with channel:
        stub = inference_pb2_grpc.InferenceControlStub(channel)
        request = inference_pb2.ExplainDeploymentRequest(adapter_name=args.name)
        deployment = stub.ExplainDeployment(request, metadata=metadata, timeout=30)
    data = deployment_json(deployment)
    emit(args, console, data, deployment_text(data))
    return OK
