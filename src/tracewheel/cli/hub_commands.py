"""`tracewheel models export|push NAME` and `tracewheel dataset push VERSION`.

NAME is what inference serves (`tracewheel models list`): an adapter, or an alias that points at
one, resolved by inference's own `ModelRegistry.resolve` over its `ListModels` answer; or an
adapter or model folder on this machine. VERSION is a dataset build as the dataset service lists
it (`tracewheel dataset list`), or a dataset folder. The work is the trainer's (export.py,
hub.py), run here: the folders must be readable from this machine. A push checks the repository
id and HF_TOKEN before it calls anything.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from tracewheel.cli.curation_commands import find_build
from tracewheel.cli.endpoints import connect
from tracewheel.cli.exit_codes import OK
from tracewheel.cli.output import emit
from tracewheel.cli.progress import Progress
from tracewheel.core.dataset_layout import MANIFEST_FILE
from tracewheel.core.errors import InvalidArgument, NotFound
from tracewheel.v1 import inference_pb2, inference_pb2_grpc


class _ListedOnly:
    """The registry backend of a listing: names are resolved here, nothing is loaded."""

    def load(self, name: str, path: str, *, first: bool) -> None:
        raise NotImplementedError("a listing loads no adapter")

    def unload(self, name: str, *, last: bool) -> None:
        raise NotImplementedError("a listing unloads no adapter")


def served_adapter(name: str, address: str | None) -> tuple[str, Path]:
    """The adapter NAME means and its folder: a folder holding an adapter (named after its job
    folder when it is the trainer's `adapter/`), else what inference serves under NAME.

    Raises:
        NotFound: inference serves no model, adapter or alias NAME.
        InvalidArgument: NAME is the base model, which has no adapter.
        grpc.RpcError: inference could not be asked.
    """
    from tracewheel.inference.adapters import ModelRegistry

    folder = Path(name)
    if (folder / "adapter_config.json").is_file():
        return (folder.resolve().parent.name if folder.name == "adapter" else folder.resolve().name), folder
    channel, metadata = connect("inference", address)
    with channel:
        models = (
            inference_pb2_grpc.InferenceControlStub(channel)
            .ListModels(inference_pb2.ListModelsRequest(), metadata=metadata)
            .models
        )
    base = next((m.name for m in models if m.kind == "base"), "")
    adapters = {m.name: m.path for m in models if m.kind == "adapter"}
    aliases = {m.name: m.target for m in models if m.kind == "alias"}
    registry = ModelRegistry(_ListedOnly(), base, adapters=adapters, aliases=aliases)
    try:
        adapter = registry.resolve(name)
    except NotFound:
        raise NotFound(
            f"no adapter folder {name!r} here and inference serves no adapter or alias of that name "
            "(`tracewheel models list` shows them)"
        ) from None
    if adapter is None:
        raise InvalidArgument(f"{name!r} is the base model {base}: it has no adapter to export")
    return adapter, Path(registry.adapters[adapter])


def _source(args: argparse.Namespace) -> Any:
    from tracewheel.trainer.export import export_source

    name, adapter_dir = served_adapter(args.name, args.address)
    return export_source(name, adapter_dir, Path(args.base_model) if args.base_model else None)


def models_export(args: argparse.Namespace, console: Console) -> int:
    """The adapter NAME, merged into its base model with --merge, written to --out."""
    from tracewheel.trainer.export import check_empty_target, export_adapter, export_merged

    if not args.name or not args.out:
        raise InvalidArgument("models export needs NAME and --out DIR")
    out = Path(args.out)
    check_empty_target(out)
    source = _source(args)
    what = f"merging {source.name} into {source.base_model_dir} ({args.dtype})" if args.merge else "exporting"
    with Progress(console, what, unit="") as progress:
        progress.update()
        export_merged(source, out, args.dtype) if args.merge else export_adapter(source, out)
    result = {"name": source.name, "adapter": str(source.adapter_dir), "base_model": str(source.base_model_dir),
              "out": str(out), "merged": args.merge, "dtype": args.dtype if args.merge else None}  # fmt: skip
    serve = "vllm serve {out} --enable-auto-tool-choice --tool-call-parser hermes --reasoning-parser qwen3"
    hint = f"; serve it with: {serve.format(out=out)}" if args.merge else " (its README.md says how to serve it)"
    emit(args, console, result, f"exported {source.name} to {out}{hint}")
    return OK


def _model_folder(args: argparse.Namespace, staging: Path) -> tuple[str, Path]:
    """The folder to push: a model folder or an export as it is; an adapter without a card
    (the trainer's own) or a served NAME exported with its card into `staging`."""
    from tracewheel.trainer.cards import CARD
    from tracewheel.trainer.export import export_adapter

    folder = Path(args.name)
    exported_adapter = (folder / CARD).is_file() and (folder / "adapter_config.json").is_file()
    if (folder / "config.json").is_file() or exported_adapter:
        return folder.resolve().name, folder
    source = _source(args)
    return source.name, export_adapter(source, staging / source.name)


def models_push(args: argparse.Namespace, console: Console) -> int:
    """Pushes an adapter (with its card) or a merged folder to the Hub repository --repo."""
    from tracewheel.trainer.hub import hub_target, push_folder

    if not args.name:
        raise InvalidArgument("models push needs NAME (an adapter, an alias, or an exported folder)")
    target = hub_target(args.repo or "", "model", args.private)
    with tempfile.TemporaryDirectory(prefix="tracewheel-push-") as staging:
        name, folder = _model_folder(args, Path(staging))
        with Progress(console, f"pushing {name} to {target.url()}", unit="") as progress:
            progress.update()
            url = push_folder(folder, target, f"tracewheel: {name}")
        files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    result = {"name": name, "repo": target.repo_id, "private": args.private, "commit_url": url, "files": files}
    emit(args, console, result, f"pushed {name} to {target.url()} ({len(files)} files): {url}")
    return OK


def dataset_push(args: argparse.Namespace, console: Console) -> int:
    """Pushes a dataset build's rows (train/eval splits, TRL format) and its manifest to --repo."""
    from tracewheel.trainer.hub import hub_target, push_folder, stage_dataset

    target = hub_target(args.repo, "dataset", args.private)
    folder = Path(args.version)
    if not (folder / MANIFEST_FILE).is_file():
        folder = Path(find_build(args, args.version).path)
    with tempfile.TemporaryDirectory(prefix="tracewheel-push-") as staging:
        splits = stage_dataset(folder, Path(staging))
        with Progress(console, f"pushing dataset {args.version} to {target.url()}", unit="") as progress:
            progress.update()
            url = push_folder(Path(staging), target, f"tracewheel: dataset {args.version}")
    result = {"version": args.version, "path": str(folder), "repo": target.repo_id, "private": args.private,
              "splits": splits, "commit_url": url}  # fmt: skip
    emit(args, console, result, f"pushed dataset {args.version} ({', '.join(splits)}) to {target.url()}: {url}")
    return OK
