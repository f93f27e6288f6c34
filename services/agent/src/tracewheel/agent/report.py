"""Evaluation reports for people: JSON, a markdown table and a PNG bar plot, runs side by side
(e.g. the base model vs an adapter)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tracewheel.core.evaluation import EvalResult

RATES = (
    ("success_rate", "task success"),
    ("valid_tool_call_rate", "valid tool calls"),
    ("right_tool_rate", "right tool"),
)
_ROWS = (
    *RATES,
    ("mean_steps", "mean steps"),
    ("mean_tokens", "mean tokens"),
    ("mean_latency_s", "mean latency (s)"),
)


def report_markdown(reports: Sequence[EvalResult]) -> str:
    """A table: one row per metric, one column per run."""
    suite = reports[0].suite if reports else ""
    header = "| metric | " + " | ".join(r.model for r in reports) + " |"
    lines = [f"### Evaluation on `{suite}`", "", header, "|---|" + "---:|" * len(reports)]
    lines.append("| tasks | " + " | ".join(str(r.tasks) for r in reports) + " |")
    for key, name in _ROWS:
        values = [getattr(r, key) for r in reports]
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in values) + " |")
    return "\n".join(lines) + "\n"


def plot_reports(reports: Sequence[EvalResult], path: Path) -> Path:
    """Grouped bars of the three rates, one bar colour per run, saved as PNG (Agg, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(reports))
    for index, report in enumerate(reports):
        xs = [position + index * width for position in range(len(RATES))]
        bars = axes.bar(xs, [float(getattr(report, key)) for key, _ in RATES], width, label=report.model)
        axes.bar_label(bars, fmt="%.2f", fontsize=8)
    axes.set_xticks([position + width * (len(reports) - 1) / 2 for position in range(len(RATES))])
    axes.set_xticklabels([name for _, name in RATES])
    axes.set_ylim(0, 1.1)
    axes.set_ylabel("rate")
    axes.set_title(f"Evaluation on {reports[0].suite}" if reports else "Evaluation")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def write_reports(reports: Sequence[EvalResult], directory: Path, stem: str = "eval") -> dict[str, Path]:
    """Writes `<stem>.json`, `<stem>.md` and `<stem>.png` into `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / f"{stem}.json", "markdown": directory / f"{stem}.md", "png": directory / f"{stem}.png"}
    paths["json"].write_text(json.dumps([r.model_dump(mode="json") for r in reports], indent=2), encoding="utf-8")
    paths["markdown"].write_text(report_markdown(reports), encoding="utf-8")
    plot_reports(reports, paths["png"])
    return paths
