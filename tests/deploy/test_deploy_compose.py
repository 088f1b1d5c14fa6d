"""docker-compose.yml: valid Compose, and the same services, commands and variables as `make up`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import opentelemetry.sdk.environment_variables as otel_sdk_variables
import pytest
from dockerfile_parse import DockerfileParser
from ruamel.yaml import YAML

from flowcase.devstack.services import SERVICES

SERVICE_NAMES = [s.name for s in SERVICES]
OTEL_STANDARD = {n for n in dir(otel_sdk_variables) if n.startswith("OTEL_")}
INFRASTRUCTURE = {"kafka", "postgres"}


def _cmd_of_target(dockerfile: DockerfileParser, target: str) -> list[str]:
    """The exec-form CMD of one target (stage) of the Dockerfile."""
    stage, cmd = None, None
    for instruction in dockerfile.structure:
        if instruction["instruction"] == "FROM":
            stage = instruction["value"].split()[-1]
        elif instruction["instruction"] == "CMD" and stage == target:
            cmd = YAML(typ="safe").load(instruction["value"])
    assert isinstance(cmd, list), f"target {target} has no exec-form CMD"
    return cmd


def test_the_compose_file_is_valid_against_the_compose_specification_schema(
    compose_raw: dict[str, Any], compose_schema: dict[str, Any]
) -> None:
    validator = jsonschema.validators.validator_for(compose_schema)(compose_schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose_raw)
    ]
    assert errors == []


def test_the_reference_loader_resolves_every_service(compose_project: dict[str, Any]) -> None:
    # Loading at all means compose-go's schema validation and consistency checks passed.
    assert set(SERVICE_NAMES) | INFRASTRUCTURE | {"init"} <= set(compose_project["services"])


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_each_service_starts_as_the_local_stack_starts_it(
    name: str,
    compose_project: dict[str, Any],
    dockerfile: DockerfileParser,
    local_stack_launches: dict[str, tuple[list[str], dict[str, str]]],
) -> None:
    service = compose_project["services"][name]
    argv, env = local_stack_launches[name]
    assert service["build"]["target"] == name
    assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert service.get("command") is None, "the image's CMD is the start command"
    assert service.get("entrypoint") is None
    assert _cmd_of_target(dockerfile, name) == ["python", *argv[1:]]
    # Every variable the local stack sets is set here too, to the container's own values.
    assert set(env) <= set(service["environment"])
    assert service["environment"]["FLOWCASE_HTTP_PORT"] == env["FLOWCASE_HTTP_PORT"]
    assert service["environment"]["OTEL_SERVICE_NAME"] == env["OTEL_SERVICE_NAME"]
    assert service["environment"]["FLOWCASE_DATABASE_URL"].endswith(f"/flowcase_{name}")
    assert service["environment"]["FLOWCASE_HTTP_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("name", [*SERVICE_NAMES, "init"])
def test_every_container_variable_is_one_its_process_reads(
    name: str, compose_project: dict[str, Any], variables_read: dict[str, set[str]]
) -> None:
    process = "provision" if name == "init" else name
    unknown = {
        variable
        for variable in compose_project["services"][name]["environment"]
        if variable not in variables_read[process] and variable not in OTEL_STANDARD
    }
    assert unknown == set(), f"{name} sets variables its process never reads"


def test_the_init_provisions_with_the_projects_own_command(
    compose_project: dict[str, Any], dockerfile: DockerfileParser
) -> None:
    init = compose_project["services"]["init"]
    assert init["build"]["target"] == "provision"
    assert _cmd_of_target(dockerfile, "provision") == [
        "python",
        "-m",
        "flowcase.devstack.provision",
    ]
    assert init["environment"]["FLOWCASE_PROVISION_PARTITIONS"] == "3"
    assert {d: c["condition"] for d, c in init["depends_on"].items()} == {
        "kafka": "service_healthy",
        "postgres": "service_healthy",
    }
    assert init["restart"] == "no"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_services_wait_for_their_dependencies_and_report_readiness(
    name: str, compose_project: dict[str, Any]
) -> None:
    service = compose_project["services"][name]
    conditions = {d: c["condition"] for d, c in service["depends_on"].items()}
    assert conditions["init"] == "service_completed_successfully"
    assert conditions["kafka"] == "service_healthy"
    assert conditions["postgres"] == "service_healthy"
    assert service["healthcheck"]["test"] == [
        "CMD",
        "python",
        "/usr/local/lib/flowcase/healthcheck.py",
        "--ready",
    ]
    for part in INFRASTRUCTURE:
        assert compose_project["services"][part]["healthcheck"]["test"][0] == "CMD"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_services_can_be_scaled(name: str, compose_project: dict[str, Any]) -> None:
    service = compose_project["services"][name]
    assert "container_name" not in service
    assert not service.get("ports"), "a published host port clashes between replicas"


def test_the_gateway_and_prometheus_reach_every_replica_of_every_service(
    root: Path, compose_project: dict[str, Any]
) -> None:
    nginx = (root / "deploy" / "gateway" / "nginx.conf").read_text()
    published = {p["published"] for p in compose_project["services"]["gateway"]["ports"]}
    prometheus = YAML(typ="safe").load(
        (root / "deploy" / "prometheus" / "prometheus.yml").read_text()
    )
    jobs = {job["job_name"]: job["dns_sd_configs"][0] for job in prometheus["scrape_configs"]}
    for service in SERVICES:
        upstream = rf"set \$upstream {service.name}:{service.port};"
        assert re.search(rf"listen {service.port};\s+location / {{\s+{upstream}", nginx), (
            f"no gateway listener for {service.name}"
        )
        assert str(service.port) in published
        assert jobs[service.name]["names"] == [service.name]
        assert jobs[service.name]["port"] == service.port


def test_the_readme_endpoints_are_published(compose_project: dict[str, Any]) -> None:
    published = {
        (name, p["published"], p["target"])
        for name, s in compose_project["services"].items()
        for p in s.get("ports") or ()
    }
    assert ("kafka", "19092", 19092) in published
    assert ("postgres", "55432", 5432) in published
    assert {
        ("jaeger", "16686", 16686),
        ("prometheus", "9090", 9090),
        ("grafana", "3000", 3000),
    } <= published


def test_every_compose_variable_is_listed_with_its_default(root: Path) -> None:
    text = (root / "docker-compose.yml").read_text()
    used = {(name, default) for name, default in re.findall(r"\$\{(\w+):-([^}]*)\}", text)}
    header = {
        (name, default)
        for name, default in re.findall(r"^#\s+(\w+)\s+\[([^\]]*)\]", text, re.MULTILINE)
    }
    assert used == header
    guide = (root / "docs" / "deploy.md").read_text()
    for name, default in used:
        assert f"| `{name}` | `{default}` |" in guide, f"docs/deploy.md lacks {name}"


def test_the_otel_pipeline_ends_in_jaeger(root: Path, compose_project: dict[str, Any]) -> None:
    collector = YAML(typ="safe").load((root / "deploy" / "otel" / "collector.yaml").read_text())
    traces = collector["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert collector["exporters"][traces["exporters"][0]]["endpoint"] == "jaeger:4317"
    endpoint = compose_project["services"]["intake"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == "http://otel-collector:4318"
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
