"""Generates tracewheel.v1 (protobuf messages, gRPC stubs, typed .pyi stubs) at build time.

The .proto files live at the repository root in proto/tracewheel/v1/; the import path
mirrors the Python package path, so `import "tracewheel/v1/trace.proto"` becomes
`from tracewheel.v1 import trace_pb2`. The output goes into src/tracewheel/v1/ (git-ignored)
so that editable installs see it too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def find_proto_root(start: Path) -> Path:
    """The proto/ directory: $TRACEWHEEL_PROTO_DIR, ../../proto (repo) or ./proto (sdist)."""
    candidates = [Path(os.environ["TRACEWHEEL_PROTO_DIR"])] if "TRACEWHEEL_PROTO_DIR" in os.environ else []
    candidates += [start / "proto", start.parent.parent / "proto"]
    for candidate in candidates:
        if (candidate / "tracewheel" / "v1").is_dir():
            return candidate
    raise RuntimeError(f"proto/tracewheel/v1 not found; looked in {[str(c) for c in candidates]}")


def generate(proto_root: Path, out_dir: Path) -> None:
    from grpc_tools import protoc  # build requirement

    out_dir.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(proto_root)) for p in (proto_root / "tracewheel" / "v1").glob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    plugins = {name: shutil.which(f"protoc-gen-{name}") for name in ("mypy", "mypy_grpc")}
    missing = [name for name, path in plugins.items() if path is None]
    if missing:
        raise RuntimeError(f"protoc plugins not on PATH: {missing} (install mypy-protobuf)")
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        f"--plugin=protoc-gen-mypy={plugins['mypy']}",
        f"--plugin=protoc-gen-mypy_grpc={plugins['mypy_grpc']}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {protos}")


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        root = Path(self.root)
        proto_root = find_proto_root(root)
        if self.target_name == "sdist":
            return
        generate(proto_root, root / "src")
