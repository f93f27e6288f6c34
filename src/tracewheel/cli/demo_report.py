"""The report of rounds (the demo's) or of one evaluation (`tracewheel eval --report`): in the
terminal, and as a folder of `report.md`, `rounds.png` and `result.json` written by `write_report`."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.files import write_json_atomically, write_text_atomically
from tracewheel.core.paired import PairedSplit


def evaluation_of(step: dict[str, Any]) -> EvalResult | None:
    """The evaluation a demo step recorded (its JSON form, beside the step's own keys such as
    `wall_s`), or None when the step has none (a failed round)."""
    figures = {key: value for key, value in step.items() if key in EvalResult.model_fields}
    return EvalResult.model_validate(figures) if figures else None


@dataclass(frozen=True)
class RoundRow:
    """One row: the base model (round 0) or the adapter a round trained."""

    round: int
    model: str
    metrics: EvalResult | None  # None: not evaluated (a failed round)
    wall_s: float
    deployed: str  # "base", "yes", "no: <the gate's reason>", "failed: <error>"
    train_traces: int = 0

    def cells(self) -> list[str]:
        m = self.metrics
        return [
            str(self.round),
            self.model,
            f"{m.success_rate:.0%}" if m else "-",
            f"{m.valid_tool_call_rate:.0%}" if m else "-",
            f"{m.mean_steps:.1f}" if m else "-",
            f"{m.mean_tokens:.0f}" if m else "-",
            str(self.train_traces) if self.round else "-",
            f"{self.wall_s:.0f}",
            self.deployed,
        ]


HEADERS = (
    "round",
    "model",
    "held-out success",
    "valid tool calls",
    "mean steps",
    "mean tokens",
    "train traces",
    "wall s",
    "deployed",
)


def rounds_table(rows: Sequence[RoundRow], suite: str = "heldout") -> Table:
    table = Table(title=f"tracewheel demo: rounds, evaluated on {suite}")
    for header in HEADERS:
        table.add_column(header)
    for row in rows:
        table.add_row(*row.cells())
    return table


def rounds_markdown(
    rows: Sequence[RoundRow],
    where: dict[str, str],
    notes: Sequence[str],
    suite: str = "heldout",
    title: str = "tracewheel demo report",
    evaluated_on: str = "held-out tasks, never trained on",
) -> str:
    """The report; `suite` is what every round was evaluated on (`evaluated_on` says what it is)."""
    lines = [f"# {title}", "", f"Evaluated on `{suite}` ({evaluated_on}).", ""]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row.cells()) + " |" for row in rows]
    lines += template_markdown(rows)
    lines += paired_markdown(rows)
    lines += tasks_markdown(rows)
    lines += ["", "![rounds](rounds.png)", "", "## Where things are", ""]
    lines += [f"- {name}: `{path}`" for name, path in where.items()]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def template_markdown(rows: Sequence[RoundRow]) -> list[str]:
    """Held-out success per task template and round (empty when no round reports templates)."""
    per_round = [row.metrics.success_by_template if row.metrics else {} for row in rows]
    templates = list(dict.fromkeys(name for by_template in per_round for name in by_template))
    if not templates:
        return []
    lines = ["", "## Held-out success per task template", ""]
    lines += ["| template | " + " | ".join(f"round {row.round}" for row in rows) + " |"]
    lines += ["|" + "---|" * (len(rows) + 1)]
    for name in templates:
        cells = [f"{by_template[name]:.0%}" if name in by_template else "-" for by_template in per_round]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _cell(text: str) -> str:
    """Text for a markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _verdict(result: TaskResult) -> str:
    return result.verdict or ("passed" if result.passed else "failed")


def tasks_markdown(rows: Sequence[RoundRow]) -> list[str]:
    """Each task's verdict per round, in the order tasks first appear (empty when no round lists its tasks)."""
    listed = [(row, {r.task_id: r for r in row.metrics.task_results}) for row in rows
              if row.metrics and row.metrics.task_results is not None]  # fmt: skip
    tasks = list(dict.fromkeys(task_id for _, results in listed for task_id in results))
    if not tasks:
        return []
    lines = ["", "## Tasks", ""]
    lines += ["| task | template | " + " | ".join(f"round {row.round}" for row, _ in listed) + " |"]
    lines += ["|" + "---|" * (len(listed) + 2)]
    for task_id in tasks:
        template = next((results[task_id].template for _, results in listed if task_id in results), "")
        cells = [_verdict(results[task_id]) if task_id in results else "-" for _, results in listed]
        lines.append(f"| {_cell(task_id)} | {_cell(template)} | " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def paired_markdown(rows: Sequence[RoundRow]) -> list[str]:
    """Each round against the round before, task by task: the held-out tasks it solved that the
    previous model did not (won), the reverse (lost), and the sign test's p on that split. On
    twenty tasks a gain of a task or two is within what training seeds alone move (docs/lab/);
    the split says whether a round's gain is more than that. Rounds whose evaluation does not
    list its tasks (failed rounds, evaluations recorded before task results were kept) are left out."""
    scored = [(row, passed) for row in rows if row.metrics and (passed := row.metrics.passed_tasks) is not None]
    if len(scored) < 2:
        return []
    lines = ["", "## Held-out tasks won and lost, round against the round before", ""]
    lines += ["| round | against | won | lost | both solved | sign test p |", "|---|---|---|---|---|---|"]
    for (before, solved_before), (after, solved_after) in itertools.pairwise(scored):
        split = PairedSplit.of(solved_after, solved_before)
        cells = f"{split.won} | {split.lost} | {split.both} | {split.p_two_sided():.2f}"
        lines.append(f"| {after.round} | {before.round} | {cells} |")
    return lines


def plot_rounds(rows: Sequence[RoundRow], path: Path) -> Path:
    """Held-out success and valid tool-call rate per round, as bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [f"round {row.round}" for row in rows]
    width = 0.38
    positions = range(len(rows))
    success = [row.metrics.success_rate if row.metrics else 0.0 for row in rows]
    valid = [row.metrics.valid_tool_call_rate if row.metrics else 0.0 for row in rows]
    axes.bar([p - width / 2 for p in positions], success, width, label="held-out success")
    axes.bar([p + width / 2 for p in positions], valid, width, label="valid tool calls")
    axes.set_xticks(list(positions), labels)
    axes.set_ylim(0, 1)
    axes.set_ylabel("rate")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
    return path


def rounds_json(rows: Sequence[RoundRow]) -> list[dict[str, Any]]:
    """The demo's `result.json`: each round with its evaluation (per-task results included; None: not evaluated)."""
    return [
        {"round": row.round, "model": row.model, "deployed": row.deployed, "wall_s": row.wall_s,
         "train_traces": row.train_traces, "evaluation": row.metrics.model_dump(mode="json") if row.metrics else None}
        for row in rows
    ]  # fmt: skip


REPORT_FILES = ("report.md", "rounds.png", "result.json")


def write_report(folder: Path, rows: Sequence[RoundRow], markdown: str, result: Any) -> dict[str, Path]:
    """Writes the report's files into `folder`: `report.md` (`markdown`, from `rounds_markdown`),
    `rounds.png` (`plot_rounds`) and `result.json` (`result`, JSON data); each file is replaced
    whole, never left half-written. Returns their paths by name.

    Raises:
        OSError: the folder cannot be written.
    """
    paths = dict(zip(("markdown", "plot", "result"), (folder / name for name in REPORT_FILES), strict=True))
    write_text_atomically(paths["markdown"], markdown)
    staging = folder / f".rounds.{secrets.token_hex(6)}.png"
    try:
        plot_rounds(rows, staging)
        os.replace(staging, paths["plot"])
    finally:
        staging.unlink(missing_ok=True)
    write_json_atomically(paths["result"], result, indent=2)
    return paths
