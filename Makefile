# The two commands of the README: `make demo` and `make test`. Both install first (once).
VENV ?= .venv
STAMP := $(VENV)/.install-stamp
INSTALL_INPUTS := scripts/install.sh scripts/system-deps.sh constraints.txt pyproject.toml \
	libs/core/pyproject.toml libs/core/hatch_build.py $(wildcard services/*/pyproject.toml) \
	$(wildcard proto/tracewheel/v1/*.proto)

.PHONY: install demo test test-slow test-all test-containers lint typecheck

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	bash scripts/install.sh
	touch $(STAMP)

demo: install
	$(VENV)/bin/tracewheel demo

# The default suite: what runs on a CPU machine in a few minutes (no container engine, no GPU).
test: install
	$(VENV)/bin/python -m pytest -m "not containers and not gpu and not slow" -q

# The slow tests (whole stacks, the demo, training end to end): CI runs them after `make test`.
test-slow: install
	$(VENV)/bin/python -m pytest -m "slow and not containers and not gpu" -q

test-all: install
	$(VENV)/bin/python -m pytest -q

# The container tests (Docker, or rootful podman as its API): builds missing images first.
test-containers: install
	$(VENV)/bin/python -m pytest -m containers tests/containers -q -s

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy over every src folder: strict on libs/core, the parsers and the domain modules; the gRPC/NATS
# edges and the CLI checked, not strict ([tool.mypy] in pyproject.toml, docs/development.md).
typecheck: install
	$(VENV)/bin/mypy
