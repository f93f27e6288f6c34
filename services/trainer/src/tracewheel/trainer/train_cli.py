"""`python -m tracewheel.trainer.train_cli DATASET BASE_MODEL OUTPUT [--recipe FILE] [--init-adapter DIR]`: one run.

Prints one JSON line per progress report and a final JSON result (or error), and appends the same
lines to OUTPUT/progress.jsonl, which a trainer following a Kubernetes Job reads on the shared
volume (k8s_runner.py); under torchrun only the first process reports. Resumes from OUTPUT's
last checkpoint, so a killed run continues when started again with the same arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from tracewheel.core.errors import TracewheelError
from tracewheel.trainer.recipe import load_recipe
from tracewheel.trainer.train import Progress, train

PROGRESS_FILE = "progress.jsonl"


def _reporter(output_dir: Path):  # type: ignore[no-untyped-def]
    """Writes a message to stdout and OUTPUT/progress.jsonl, from the first process only."""
    main_process = os.environ.get("RANK", "0") == "0"

    def report(message: dict[str, Any]) -> None:
        if not main_process:
            return
        line = json.dumps(message, default=str)
        print(line, flush=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        with (output_dir / PROGRESS_FILE).open("a", encoding="utf-8") as progress:
            progress.write(line + "\n")

    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("base_model_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument(
        "--recipe", type=Path, default=None, help="recipe YAML file, under the TW_RECIPE_* variables (default: none)"
    )
    parser.add_argument(
        "--init-adapter", type=Path, default=None, help="start from this adapter's weights (a warm start)"
    )
    args = parser.parse_args(argv)
    # stderr is the job's train.log (isolated.py): what was resumed, which rows a warm start trains
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    report = _reporter(args.output_dir)

    def on_progress(progress: Progress) -> None:
        report({"progress": dataclasses.asdict(progress)})

    try:
        recipe = load_recipe(args.recipe)
        result = train(
            args.dataset_dir, args.base_model_dir, args.output_dir, recipe, on_progress, init_adapter=args.init_adapter
        )
    except TracewheelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        report({"error": f"{type(exc).__name__}: {exc}"})
        return 2
    report({"result": dataclasses.asdict(result)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
