"""The demo's table of rounds: in the terminal, as markdown, and as a PNG plot."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from tracewheel.core.evaluation import EvalResult
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
    rows: Sequence[RoundRow], where: dict[str, str], notes: Sequence[str], suite: str = "heldout"
) -> str:
    """The report; `suite` is what every round was evaluated on (a suite's held-out split)."""
    lines = ["# tracewheel demo report", "", f"Evaluated on `{suite}` (held-out tasks, never trained on).", ""]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    lines += template_markdown(rows)
    lines += paired_markdown(rows)
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
