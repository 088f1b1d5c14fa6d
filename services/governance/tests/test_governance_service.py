"""The governance service against the real broker and database: live projection, redelivery,
replay from scratch, the API and the Prometheus exposition."""

from __future__ import annotations

import gc
import random
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flowcase.devstack.topic_reader import read_topic
from flowcase.events import Envelope, Topic
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.governance import (
    Granularity,
    advise,
    fold,
    measure,
    process_types,
    resolution_drift,
    series,
)
from flowcase.governance.api_models import ProcessDetail
from flowcase.governance.composition import build_service
from flowcase.governance.reports import ProcessReport, Span
from flowcase.runtime.settings import AuthSettings


def expected_detail(events: list[Envelope], process_type: str, span: Span) -> dict[str, Any]:
    """What the API must answer, computed by the pure core alone over the same events."""
    facts = fold(events)
    # The service judges open requests' promises at its clock's now: every due time of these
    # histories is long past, at any now the test runs at.
    now = datetime.now(UTC)
    windows = series(
        facts,
        process_type,
        span.granularity,
        span.windows[0].start,
        span.windows[-1].start,
        now=now,
    )
    totals = measure(facts, process_type, span.period, now=now)
    drift = resolution_drift(windows)
    report = ProcessReport(process_type, span, totals, tuple(windows), drift, advise(totals, drift))
    return ProcessDetail.of(report).model_dump(mode="json")


async def details(running: Any, types: list[str], query: str = "") -> dict[str, Any]:
    answers = {}
    for process_type in types:
        response = await running.http.get(f"/v1/processes/{process_type}{query}")
        assert response.status_code == 200, response.text
        answers[process_type] = response.json()
    return answers


async def test_live_projection_equals_the_pure_figures_redelivery_changes_nothing_replay_agrees(
    kafka_settings: KafkaSettings,
    database_url: str,
    another_database_url: str,
    start_governance: Callable[..., Awaitable[Any]],
    make_workload: Callable[..., list[Envelope]],
    make_random_history: Callable[..., list[Envelope]],
) -> None:
    # A designed week plus a random history whose events collide, arrive late and repeat.
    events = make_workload() + make_random_history(11, events=300, days=6)
    types = process_types(fold(events))
    live = await start_governance(kafka_settings, database_url)

    async with EventProducer(kafka_settings, client_id="test-governance") as producer:
        # An undecodable record first: dead-lettered, and the projection goes on.
        workflow_topic = kafka_settings.topic(Topic.WORKFLOW_EVENTS)
        await producer.send_raw(workflow_topic, b"{not json", key=b"k", headers=[])
        await producer.publish_all(events)
        await live.caught_up(len(events))

        metrics_before = (await live.http.get("/metrics")).text
        span = live.service.reports.span()
        answers = await details(live, types)
        for process_type in types:
            assert answers[process_type] == expected_detail(events, process_type, span)
        by_hour = "?granularity=hour&since=2026-11-24T00:00:00Z&until=2026-11-25T00:00:00Z"
        hourly = await details(live, ["invoice-approval"], by_hour)
        assert len(hourly["invoice-approval"]["series"]) == 24
        assert hourly["invoice-approval"] == expected_detail(
            events,
            "invoice-approval",
            live.service.reports.span(
                Granularity.HOUR,
                since=span.windows[1].start,
                until=span.windows[1].start + timedelta(days=1),
            ),
        )

        # Redelivered events (the same envelopes again) change no figure.
        again = random.Random(3).sample(events, 200)
        await producer.publish_all(again)
        await live.caught_up(len(events) + len(again))
        assert await details(live, types) == answers

    dead = await read_topic(kafka_settings, kafka_settings.topic(Topic.DEADLETTER), count=1)
    assert [r.value for r in dead] == [b"{not json"]

    # /metrics: the per-process gauges are there and the projection counters moved.
    metrics_after = (await live.http.get("/metrics")).text
    assert 'flowcase_governance_exception_ratio{process_type="vendor-onboarding"}' in metrics_after
    assert (
        'flowcase_governance_recommendation{approach="case",process_type="incident-triage"} 1.0'
        in metrics_after
    )
    assert 'flowcase_governance_resolution_drift{process_type="access-request"} 1.0' in (
        metrics_after
    )
    group = live.service.consumer.runner.group_id
    assert _processed(metrics_after, group) == _processed(metrics_before, group) + len(again)
    assert f'flowcase_governance_projection_lag_seconds{{group="{group}"}}' in metrics_after

    # A replay from offset 0 into an empty database, by a new consumer group, agrees.
    replay = await start_governance(kafka_settings, another_database_url, group_id="replay")
    await replay.caught_up(len(events) + len(again))
    assert await details(replay, types) == answers
    for path in ("/v1/processes", "/v1/alerts"):
        assert (await replay.http.get(path)).json() == (await live.http.get(path)).json()


def _processed(exposition: str, group: str) -> float:
    """Events the group processed, over every topic, as /metrics reports them."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("flowcase_messages_processed_total") and f'group="{group}"' in line
    )


async def test_an_assembly_closed_without_its_consumer_running_leaves_no_producer_open(
    kafka_settings: KafkaSettings, database_url: str, auth_settings: AuthSettings
) -> None:
    """An assembly that serves only its API (a benchmark's dashboard, a read replica) never runs
    its consumer, which made its dead-letter producer at once: closing the assembly closes it
    (it was left open, and aiokafka warned as it was collected)."""
    assembly = await build_service(
        kafka_settings, DatabaseSettings(url=database_url), auth=auth_settings
    )
    await assembly.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del assembly
        gc.collect()
    assert [str(w.message) for w in caught if "Unclosed" in str(w.message)] == []
