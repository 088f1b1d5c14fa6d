"""Each service's /metrics: the named series exist, move under traffic, and lag drains."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from flowcase.events.kafka import EventProducer
from flowcase.events.topics import Topic

BURST = 12


async def _scrape(
    platform: Any, service: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await platform.http[service].get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _sum(samples: dict[Any, float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def _has(samples: dict[Any, float], name: str, **labels: str) -> bool:
    wanted = set(labels.items())
    return any(n == name and wanted <= ls for (n, ls) in samples)


async def test_the_named_series_exist_move_under_traffic_and_lag_returns_to_zero(
    platform: Any, until: Callable[..., Awaitable[Any]]
) -> None:
    requests_topic = platform.topic(Topic.INTAKE_REQUESTS)
    workflow_events = platform.topic(Topic.WORKFLOW_EVENTS)
    case_events = platform.topic(Topic.CASE_EVENTS)
    before = {service: await _scrape(platform, service) for service in platform.http}

    # A burst: invoices that wait on an approval, complaints that open cases, and one message
    # no consumer can decode.
    async with EventProducer(platform.kafka, client_id="observability-test") as producer:
        await producer.send_raw(requests_topic, b"not an envelope", key=b"junk", headers=[])
    await asyncio.gather(
        *(
            platform.submit(
                "invoice_approval",
                {"invoice_id": f"INV-{i}", "vendor": "Acme", "amount": 2500, "currency": "EUR"},
            )
            for i in range(BURST)
        ),
        *(
            platform.submit("access_complaint", {"system": "erp", "complaint": f"see {i}"})
            for i in range(2)
        ),
    )

    async def settled() -> dict[str, Any]:
        return {service: await _scrape(platform, service) for service in platform.http}

    def drained(now: dict[str, Any]) -> bool:
        workflow = now["workflow"]
        processed = _sum(
            workflow, "flowcase_messages_processed_total", topic=requests_topic, group="workflow"
        ) - _sum(
            before["workflow"],
            "flowcase_messages_processed_total",
            topic=requests_topic,
            group="workflow",
        )
        return (
            processed >= BURST + 2
            and _sum(
                workflow, "flowcase_workflow_pending_approvals", request_type="invoice_approval"
            )
            >= BURST
            and _sum(now["case"], "flowcase_case_open_cases", status="open") >= 2
            and _sum(now["governance"], "flowcase_messages_processed_total", topic=case_events) >= 2
            and all(
                _sum(now[s], "flowcase_consumer_lag_messages", topic=t) == 0
                for s, t in (
                    ("workflow", requests_topic),
                    ("case", workflow_events),
                    ("governance", workflow_events),
                    ("governance", case_events),
                )
            )
            and _sum(workflow, "flowcase_relay_backlog_events", relay="workflow-events") == 0
            and _sum(now["case"], "flowcase_relay_backlog_events", relay="case-events") == 0
        )

    after = await until(settled, drained, timeout=60)

    # HTTP: the submissions counted by route and status, and timed.
    intake = after["intake"]
    http_route = {"method": "POST", "route": "/v1/requests", "status": "202"}
    grew = _sum(intake, "flowcase_http_requests_total", **http_route) - _sum(
        before["intake"], "flowcase_http_requests_total", **http_route
    )
    assert grew == BURST + 2
    assert (
        _sum(intake, "flowcase_http_request_duration_seconds_count", route="/v1/requests") >= grew
    )
    # Kafka: published per topic, processed per topic and group; lag per partition.
    assert _sum(intake, "flowcase_messages_published_total", topic=requests_topic) >= BURST + 2
    assert _has(
        after["workflow"], "flowcase_consumer_lag_messages", topic=requests_topic, partition="0"
    )
    assert _has(after["case"], "flowcase_messages_processed_total", group="case")
    deadlettered = {"topic": requests_topic, "group": "workflow"}
    assert _sum(after["workflow"], "flowcase_messages_deadlettered_total", **deadlettered) == 1
    # The event store: append latency observed on every save (one per consumed batch or group
    # of reports, so fewer than the requests); both relays' backlogs.
    appended = _sum(after["workflow"], "flowcase_eventstore_append_seconds_count") - _sum(
        before["workflow"], "flowcase_eventstore_append_seconds_count"
    )
    assert appended >= 1
    assert _has(after["case"], "flowcase_relay_backlog_events", relay="case-events")
    # The read models' gauges.
    assert _sum(after["workflow"], "flowcase_workflow_pending_approvals") >= BURST
    assert _sum(after["case"], "flowcase_case_open_cases") >= 2
