# Flowcase: the two commands a newcomer needs are `make up` and `make test`.
SHELL := /bin/bash
UV ?= uv
RUN := $(UV) run --all-packages
TOOLS := .flowcase/tools

.PHONY: help install up up-detached down status test test-unit test-integration lint typecheck asyncapi schemas clean

help:
	@echo "make up      start Kafka, PostgreSQL and the services (installs what is missing)"
	@echo "make test    run every test against the real broker and database"
	@echo "make down    stop a platform started in the background"
	@echo "other: install test-unit test-integration lint typecheck asyncapi schemas clean"

# Everything the project needs, installed idempotently: system packages (apt), the Python
# workspace (uv), the Kafka jars (Maven) and the AsyncAPI specification schemas (npm).
install:
	@bash deploy/local/install.sh

up: install
	$(RUN) flowcase stack up

up-detached: install
	$(RUN) flowcase stack up --detach

down:
	$(RUN) flowcase stack down

status:
	$(RUN) flowcase stack status

test: install
	$(RUN) pytest

test-unit:
	$(RUN) pytest -m "not integration"

test-integration: install
	$(RUN) pytest -m integration

lint:
	$(RUN) ruff check libs services tests
	$(RUN) ruff format --check libs services tests

typecheck:
	$(RUN) mypy libs/events/src libs/devstack/src libs/cli/src

asyncapi:
	@$(RUN) flowcase events asyncapi > asyncapi.yaml && echo "wrote asyncapi.yaml"

schemas:
	$(RUN) flowcase events schemas schemas/

clean:
	$(RUN) flowcase stack down || true
	rm -rf .flowcase
