"""The provisioned Grafana dashboard queries series the code exports, and Grafana finds it."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from ruamel.yaml import YAML

# The modules that define the platform's Prometheus series.
METRIC_MODULES = (
    "flowcase.runtime.metrics",
    "flowcase.events.kafka.metrics",
    "flowcase.eventstore.metrics",
    "flowcase.case.prometheus",
    "flowcase.workflow.prometheus",
)
# What the platform-health dashboard must show (HTTP, consumers, relay, event store, work
# waiting on people).
REQUIRED = {
    "flowcase_http_requests_total",
    "flowcase_http_request_duration_seconds_bucket",
    "flowcase_consumer_lag_messages",
    "flowcase_messages_processed_total",
    "flowcase_messages_deadlettered_total",
    "flowcase_relay_backlog_events",
    "flowcase_eventstore_append_seconds_bucket",
    "flowcase_case_open_cases",
    "flowcase_workflow_pending_approvals",
}


def _exported_samples() -> set[str]:
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
    return names


def _dashboard(root: Path) -> dict[str, Any]:
    return json.loads((root / "deploy/grafana/dashboards/platform-health.json").read_text())


def test_the_dashboard_queries_only_series_the_code_exports(root: Path) -> None:
    expressions = [t["expr"] for p in _dashboard(root)["panels"] for t in p["targets"]]
    queried = {m for e in expressions for m in re.findall(r"\bflowcase_[a-z_]+", e)}
    assert queried - _exported_samples() == set()
    assert queried >= REQUIRED


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(
    root: Path, compose_project: dict[str, Any]
) -> None:
    provisioning = root / "deploy/grafana/provisioning"
    [datasource] = YAML(typ="safe").load(
        (provisioning / "datasources/prometheus.yaml").read_text()
    )["datasources"]
    [provider] = YAML(typ="safe").load((provisioning / "dashboards/flowcase.yaml").read_text())[
        "providers"
    ]
    mounts = {
        Path(v["source"]).relative_to(root).as_posix(): v["target"]
        for v in compose_project["services"]["grafana"]["volumes"]
        if v["type"] == "bind"
    }
    assert mounts["deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    uids = {t["datasource"]["uid"] for p in _dashboard(root)["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}
    assert datasource["url"] == "http://prometheus:9090"
