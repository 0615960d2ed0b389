# Two commands for a newcomer: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
VENV := .venv
UV := $(TOOLS)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON := $(shell command -v $(PYTHON))

.PHONY: run test test-fast check fmt install image fuzz fuzz-ci bench-ledger bench-authorize bench-vault bench-settlement bench-webhooks bench-connectors bench-reconcile bench-routing-risk bench-sim sim-ci clean

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Clearport needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $@

install: $(VENV)/.synced

# `make run PORT=8001` when 8000 is taken.
PORT ?= 8000

run: install
	$(VENV)/bin/clearport run --port $(PORT)

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The unit tier: the domain and the services over the shipped in-memory fakes, no PostgreSQL.
test-fast: install
	$(VENV)/bin/pytest tests/unit -m "not slow" $(PYTEST_ARGS)

check: install
	$(VENV)/bin/ruff check src tests bench tools
	$(VENV)/bin/ruff format --check src tests bench tools
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python tools/check_migrations.py

# Lint the Dockerfile, compose.yaml and deploy/k8s; build the image with podman (root) and check
# its filesystem (tools/image.sh; skips the build, saying so, without root or podman).
image: install
	bash tools/image.sh

# The API fuzzed from its own OpenAPI document against a live server (tools/fuzz.py, schemathesis):
# CI's fixed seed and a fixed 100 cases per operation and phase (the same work under any load); `make fuzz` a random seed for as long as you like
# (FUZZ_SECONDS per key). Each prints its seed, cases, failures and the allowances it used.
FUZZ_SEED ?= 20261207
FUZZ_SECONDS ?= 600

fuzz-ci: install
	$(VENV)/bin/python -m tools.fuzz --seed $(FUZZ_SEED) --max-examples 100 --min-cases 10000

fuzz: install
	$(VENV)/bin/python -m tools.fuzz --max-time $(FUZZ_SECONDS)

fmt: install
	$(VENV)/bin/ruff check --fix src tests bench tools
	$(VENV)/bin/ruff format src tests bench tools

# Benchmarks (bench/README.md): run on demand, each prints its figure beside a same-run baseline.
bench-ledger: install
	$(VENV)/bin/python -m bench.ledger

bench-authorize: install
	$(VENV)/bin/python -m bench.authorize

bench-vault: install
	$(VENV)/bin/python -m bench.vault_bench

bench-settlement: install
	$(VENV)/bin/python -m bench.settlement

bench-webhooks: install
	$(VENV)/bin/python -m bench.webhooks
bench-connectors: install
	$(VENV)/bin/python -m bench.connectors

bench-reconcile: install
	$(VENV)/bin/python -m bench.reconcile --items $(or $(ITEMS),10000000)

bench-routing-risk: install
	$(VENV)/bin/python -m bench.routing_risk
# The money simulation (bench/sim): SEEDS seeds 1..N; `make sim-ci` CI's 50 (a fixed list and
# today's date as a seed). Each prints seeds/s, steps, faults by kind and violations (0).
SEEDS ?= 1000
bench-sim: install
	$(VENV)/bin/python -m bench.sim --seeds $(SEEDS)

sim-ci: install
	$(VENV)/bin/python -m bench.sim --ci

clean:
	rm -rf $(VENV) $(TOOLS)
