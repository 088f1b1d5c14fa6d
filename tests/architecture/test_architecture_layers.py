"""The layers hold: each service's pure core and service layer load no driver (no Kafka, SQL or
HTTP client or server; OpenTelemetry's API, which does no I/O of its own, is allowed), and no
service loads another. Checked by importing the modules in a
fresh interpreter and reading what it loaded, so an import through any path counts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# The core and the service layer of each service: what may be tested without servers.
INNER = {
    "intake": (
        "validation",
        "request_types",
        "status",
        "identity",
        "ports",
        "submission_service",
        "status_service",
    ),
    "workflow": (
        "definition",
        "definition_files",
        "rules",
        "triggers",
        "effects",
        "state",
        "engine",
        "registry",
        "what_if",
        "migration",
    ),
    "case": ("aggregate", "lifecycle", "chain", "entries", "commands", "errors"),
    "governance": (
        "facts",
        "projector",
        "windows",
        "stats",
        "metrics",
        "drift",
        "advisor",
        "alerts",
        "ports",
        "reports",
    ),
}
DRIVERS = (
    "aiokafka",
    "asyncpg",
    "psycopg",
    "eventsourcing.postgres",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "aiohttp",
)
SERVICES = tuple(INNER)


def loaded_by(modules: list[str]) -> list[str]:
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


@pytest.mark.parametrize("service", SERVICES)
def test_the_core_and_the_service_layer_load_no_driver(service: str) -> None:
    loaded = loaded_by([f"flowcase.{service}.{module}" for module in INNER[service]])
    drivers = sorted(
        {d for d in DRIVERS for name in loaded if name == d or name.startswith(f"{d}.")}
    )
    assert drivers == [], f"flowcase.{service}'s inner layers load {drivers}"


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_loads_no_other_service(service: str) -> None:
    loaded = loaded_by([f"flowcase.{service}.composition"])
    others = sorted(
        {
            other
            for other in SERVICES
            if other != service
            for name in loaded
            if name == f"flowcase.{other}" or name.startswith(f"flowcase.{other}.")
        }
    )
    assert others == [], f"flowcase.{service} loads {others}"
