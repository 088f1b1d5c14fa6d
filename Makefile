# Flowcase: the two commands a newcomer needs are `make up` and `make test`.
SHELL := /bin/bash
UV ?= uv
RUN := $(UV) run --all-packages
TOOLS := .flowcase/tools

.PHONY: help install up up-detached down status test test-unit test-integration soak bench lint typecheck asyncapi schemas clean

help:
	@echo "make up      start Kafka, PostgreSQL and the services and seed the demo (DEMO=0: no demo)"
	@echo "make test    run every test against the real broker and database"
	@echo "make down    stop a platform started in the background"
	@echo "make soak    mixed load with faults on a dedicated stack (SOAK_SECONDS=600); not in make test"
	@echo "make bench   the platform at stepped rates next to raw Kafka/PostgreSQL (BENCH_RATES, BENCH_VIA, BENCH_DRAIN, BENCH_IDLE)"
	@echo "other: install test-unit test-integration lint typecheck asyncapi schemas clean"

# Everything the project needs, installed idempotently: system packages (apt), the Python
# workspace (uv), the Kafka jars (Maven) and the AsyncAPI specification schemas (npm).
install:
	@bash deploy/local/install.sh

# DEMO=0 skips the demo workload (`make up DEMO=0`).
DEMO ?= 1
DEMO_FLAG := $(if $(filter 0,$(DEMO)),--no-demo,)

up: install
	$(RUN) flowcase stack up $(DEMO_FLAG)

up-detached: install
	$(RUN) flowcase stack up --detach $(DEMO_FLAG)

down:
	$(RUN) flowcase stack down

status:
	$(RUN) flowcase stack status

# Two workers, each module whole on one (its module-scoped service and topics set up once):
# most of a test's time is waiting on the broker and the database, so two overlap well even
# on two busy cores. TEST_WORKERS=0 runs the suite in this process.
TEST_WORKERS ?= 2
test: install
	$(RUN) pytest -n $(TEST_WORKERS) --dist loadfile

test-unit:
	$(RUN) pytest -m "not integration"

test-integration: install
	$(RUN) pytest -m integration

# The reliability suite's long run: mixed load, a fault every SOAK_FAULT_EVERY seconds, memory,
# lag and latency sampled to benchmarks/results/reliability-soak-*.json (docs/reliability.md).
SOAK_SECONDS ?= 600
SOAK_RATE ?= 3
SOAK_FAULT_EVERY ?= 45
soak: install
	FLOWCASE_SOAK_SECONDS=$(SOAK_SECONDS) FLOWCASE_SOAK_RATE=$(SOAK_RATE) \
	FLOWCASE_SOAK_FAULT_EVERY=$(SOAK_FAULT_EVERY) \
	$(RUN) pytest tests/reliability/test_reliability_soak.py -s -p no:cacheprovider

# The platform benchmark on a dedicated stack (benchmarks/README.md): each via at each rate for
# BENCH_SECONDS, results to benchmarks/results/platform-*.json. BENCH_ARGS passes more options,
# e.g. BENCH_ARGS="--replicas 2 --profile workflow". The rates bracket what 2 cores keep up with.
# BENCH_DRAIN=N adds the saturation mode after the steps: N requests published at once on the raw
# topic and timed until each has its outcome (`--drain N`; empty: none).
BENCH_RATES ?= 20 40 80
BENCH_SECONDS ?= 20
BENCH_VIA ?= http raw
BENCH_DRAIN ?=
# BENCH_IDLE=S holds the platform idle S seconds after the warm-up and samples its CPU.
BENCH_IDLE ?=
BENCH_ARGS ?=
bench: install
	$(RUN) flowcase bench $(foreach r,$(BENCH_RATES),--rate $(r)) --seconds $(BENCH_SECONDS) \
	$(foreach v,$(BENCH_VIA),--via $(v)) $(if $(BENCH_DRAIN),--drain $(BENCH_DRAIN)) \
	$(if $(BENCH_IDLE),--idle-seconds $(BENCH_IDLE)) $(BENCH_ARGS)

# Both run in CI before the tests (.ci/run). Lint: all the repository's Python (ruff skips .venv
# and .flowcase). Typecheck: every library and service with its tests, tests/, benchmarks/ and
# deploy/ (the `files` of [tool.mypy] in pyproject.toml).
lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck:
	$(RUN) mypy

asyncapi:
	@$(RUN) flowcase events asyncapi > asyncapi.yaml && echo "wrote asyncapi.yaml"

schemas:
	$(RUN) flowcase events schemas schemas/

clean:
	$(RUN) flowcase stack down || true
	rm -rf .flowcase
