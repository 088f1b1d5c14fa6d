"""The metrics API over a projected week: recommendations, alerts, errors, readiness, OpenAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from flowcase.events import Envelope
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import KafkaSettings


@pytest.fixture
async def governance(
    kafka_settings: KafkaSettings,
    database_url: str,
    start_governance: Callable[..., Awaitable[Any]],
    make_workload: Callable[..., list[Envelope]],
) -> Any:
    """A service that projected the designed week through the real broker."""
    running = await start_governance(kafka_settings, database_url)
    events = make_workload()
    async with EventProducer(kafka_settings, client_id="test-governance-http") as producer:
        await producer.publish_all(events)
    await running.caught_up(len(events))
    return running


async def test_processes_alerts_errors_and_readiness(governance: Any) -> None:
    http = governance.http
    processes = (await http.get("/v1/processes")).json()["processes"]
    assert {p["process_type"]: p["recommendation"]["approach"] for p in processes} == {
        "access-request": "layered",
        "incident-triage": "case",
        "invoice-approval": "workflow",
        "vendor-onboarding": "layered",
    }
    invoice = next(p for p in processes if p["process_type"] == "invoice-approval")
    assert invoice["totals"]["volume"] == 56
    assert invoice["recommendation"]["most_overridden_rule"] == "amount <= 1000 (v1)"
    assert invoice["period"] == {"start": "2026-11-23T00:00:00Z", "end": "2026-11-30T00:00:00Z"}

    detail = (await http.get("/v1/processes/invoice-approval?granularity=week&windows=2")).json()
    assert [w["volume"] for w in detail["series"]] == [0, 56]
    assert detail["rule_overrides"][0]["rule"] == "amount <= 1000"
    assert len(detail["audit_gaps"]["gaps"]) == 7
    assert detail["audit_gaps"]["gaps"][0]["missing"] == ["rationale"]
    assert {s["step"] for s in detail["steps"]} == {"validate", "approve"}

    alerts = (await http.get("/v1/alerts?since=2026-11-23T00:00:00Z")).json()["alerts"]
    kinds = {(a["kind"], a["process_type"]) for a in alerts}
    assert ("drift", "access-request") in kinds
    assert ("exception_rate", "vendor-onboarding") in kinds
    assert ("exception_rate", "invoice-approval") not in kinds
    assert ("bottleneck", "invoice-approval") in kinds
    gap = next(a for a in alerts if a["kind"] == "audit_gap")
    assert gap["process_type"] == "invoice-approval"
    assert all(
        r.startswith("request/") and r.endswith("/approval/approve") for r in gap["record_ids"]
    )

    missing = await http.get("/v1/processes/payroll")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "payroll" in missing.json()["detail"]

    for query, field in (
        ("granularity=month", "granularity"),
        ("windows=0", "windows"),
        ("since=2026-11-01T00:00:00", "since"),  # no time zone
        ("since=2026-11-30T00:00:00Z&until=2026-11-01T00:00:00Z", "since"),
        ("granularity=hour&since=2025-01-01T00:00:00Z", "since"),  # over 1000 windows
        ("since=0001-01-01T00:00:00%2B01:00", "since"),  # no UTC time: the calendar's start
        ("until=9999-12-31T23:59:59-01:00", "until"),  # nor at its end
    ):
        for path in ("/v1/processes", "/v1/processes/invoice-approval", "/v1/alerts", "/"):
            answer = await http.get(f"{path}?{query}")
            assert answer.status_code == 422, (path, query, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert [e["field"] for e in answer.json()["errors"]] == [f"query.{field}"]

    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"kafka": "ok", "postgresql": "ok"}

    openapi = (await http.get("/openapi.json")).json()
    assert {"/v1/processes", "/v1/processes/{process_type}", "/v1/alerts", "/"} <= set(
        openapi["paths"]
    )
    assert "examples" in openapi["components"]["schemas"]["ProcessSummary"]
    assert "404" in openapi["paths"]["/v1/processes/{process_type}"]["get"]["responses"]
