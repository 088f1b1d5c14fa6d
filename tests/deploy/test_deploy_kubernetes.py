"""deploy/k8s: rendered with kustomize, valid against the Kubernetes schemas, and consistent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import opentelemetry.sdk.environment_variables as otel_sdk_variables
import pytest
from ruamel.yaml import YAML

from flowcase.devstack.services import SERVICES

KUBERNETES_VERSION = "1.30.0"
OTEL_STANDARD = {n for n in dir(otel_sdk_variables) if n.startswith("OTEL_")}


def _by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def _env_names(pod: dict[str, Any], resources: list[dict[str, Any]]) -> set[str]:
    """Every variable the pod's container gets, `envFrom` ConfigMaps and Secrets resolved."""
    [container] = pod["spec"]["containers"]
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        found = _by_kind(resources, kind).get(ref["name"])
        if found is None:
            assert ref.get("optional"), f"{kind} {ref['name']} is missing"
            continue
        names |= set(found.get("data") or {}) | set(found.get("stringData") or {})
    return names


@pytest.mark.parametrize("variant", ["base", "overlay"])
def test_every_rendered_resource_is_valid_for_kubernetes(
    variant: str, request: pytest.FixtureRequest
) -> None:
    resources = request.getfixturevalue(f"k8s_{variant}")
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_lag_based_autoscaler_example_is_valid(root: Path) -> None:
    example = YAML(typ="safe").load(
        (root / "deploy/k8s/examples/hpa-consumer-lag.yaml").read_text()
    )
    kubernetes_validate.validate(example, KUBERNETES_VERSION, strict=True)
    [metric] = example["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "flowcase_consumer_lag_messages"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
@pytest.mark.parametrize("variant", ["base", "overlay"])
def test_each_service_deployment_runs_its_image_as_the_local_stack_does(
    service: Any,
    variant: str,
    request: pytest.FixtureRequest,
    variables_read: dict[str, set[str]],
    local_stack_launches: dict[str, tuple[list[str], dict[str, str]]],
) -> None:
    resources = request.getfixturevalue(f"k8s_{variant}")
    deployment = _by_kind(resources, "Deployment")[service.name]
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["image"].rpartition(":")[0].endswith(f"flowcase/{service.name}")
    assert "command" not in container, "the image's CMD is the start command"
    assert "args" not in container
    assert container["ports"] == [{"name": "http", "containerPort": service.port}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["FLOWCASE_HTTP_PORT"]["value"] == str(service.port)
    names = _env_names(pod, resources)
    _, local_env = local_stack_launches[service.name]
    # A cluster validates tokens against its OIDC issuer: the local dev secret is optional there.
    assert set(local_env) - {"FLOWCASE_AUTH_DEV_SECRET"} <= names
    assert names - variables_read[service.name] - OTEL_STANDARD == set()
    service_resource = _by_kind(resources, "Service")[service.name]
    assert service_resource["spec"]["ports"][0]["port"] == service.port


@pytest.mark.parametrize("variant", ["base", "overlay"])
def test_consumers_scale_on_cpu_up_to_the_partition_count(
    variant: str, request: pytest.FixtureRequest
) -> None:
    resources = request.getfixturevalue(f"k8s_{variant}")
    [provision_config] = [
        c for n, c in _by_kind(resources, "ConfigMap").items() if n.startswith("flowcase-provision")
    ]
    partitions = int(provision_config["data"]["FLOWCASE_PROVISION_PARTITIONS"])
    autoscalers = _by_kind(resources, "HorizontalPodAutoscaler")
    budgets = _by_kind(resources, "PodDisruptionBudget")
    for service in SERVICES:
        hpa = autoscalers[service.name]["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": service.name,
        }
        assert hpa["metrics"][0]["resource"]["name"] == "cpu"
        assert hpa["maxReplicas"] == partitions, "replicas beyond the partitions stay idle"
        assert budgets[service.name]["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("variant", ["base", "overlay"])
def test_the_provisioning_job_reads_only_its_own_variables(
    variant: str, request: pytest.FixtureRequest, variables_read: dict[str, set[str]]
) -> None:
    resources = request.getfixturevalue(f"k8s_{variant}")
    job = _by_kind(resources, "Job")["flowcase-provision"]
    pod = job["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["image"].rpartition(":")[0].endswith("flowcase/provision")
    names = _env_names(pod, resources)
    assert {"FLOWCASE_KAFKA_BOOTSTRAP", "FLOWCASE_PROVISION_ADMIN_DATABASE_URL"} <= names
    assert names <= variables_read["provision"]


def test_the_overlay_points_at_external_kafka_and_postgresql(
    k8s_overlay: list[dict[str, Any]],
) -> None:
    configs = {n.rsplit("-", 1)[0]: c for n, c in _by_kind(k8s_overlay, "ConfigMap").items()}
    kafka = configs["flowcase-kafka"]["data"]
    assert kafka["FLOWCASE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert "example.internal" in kafka["FLOWCASE_KAFKA_BOOTSTRAP"]
    secrets = {n.rsplit("-", 1)[0] for n in _by_kind(k8s_overlay, "Secret")}
    assert {f"flowcase-{s.name}-database" for s in SERVICES} <= secrets
    for deployment in _by_kind(k8s_overlay, "Deployment").values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert kafka["FLOWCASE_KAFKA_SSL_CAFILE"].rpartition("/")[0] in mounts
        assert container["image"].startswith("registry.example.internal/")
