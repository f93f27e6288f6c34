"""`python -m tracewheel.trainer.train_cli DATASET BASE_MODEL OUTPUT [--recipe FILE] [--init-adapter DIR]`: one run.

Prints one JSON line per progress report and a final JSON result; resumes from OUTPUT's last
checkpoint, so a killed run continues when started again with the same arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from tracewheel.core.errors import TracewheelError
from tracewheel.trainer.recipe import load_recipe
from tracewheel.trainer.train import Progress, train


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

    def report(progress: Progress) -> None:
        print(json.dumps({"progress": dataclasses.asdict(progress)}), flush=True)

    try:
        recipe = load_recipe(args.recipe)
        result = train(
            args.dataset_dir, args.base_model_dir, args.output_dir, recipe, report, init_adapter=args.init_adapter
        )
    except TracewheelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"result": dataclasses.asdict(result)}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
