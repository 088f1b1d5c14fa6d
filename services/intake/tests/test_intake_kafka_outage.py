"""Intake while Kafka does not answer: never a 202 for an event that was not stored."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError

from flowcase.devstack.topic_reader import read_topic
from flowcase.events.codec import decode
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.events.topics import Topic
from flowcase.intake.composition import build_service
from flowcase.intake.settings import IntakeSettings
from flowcase.runtime import HttpSettings


async def test_a_broker_that_stops_answering_gets_503_and_a_retry_is_one_request(
    start_intake, publish, definition, invoice, kafka_settings, kafka_fault_proxy, until
) -> None:
    await publish(definition())
    through_proxy = kafka_settings.model_copy(update={"bootstrap": kafka_fault_proxy.bootstrap})
    key = {"Idempotency-Key": "outage-1"}
    async with start_intake(through_proxy, publish_timeout_seconds=1.5) as (_, client):
        before = await client.post("/v1/requests", json=invoice())
        await kafka_fault_proxy.stop()
        during = await client.post("/v1/requests", json=invoice(), headers=key)
        readiness = await client.get("/readyz")
        await kafka_fault_proxy.start()
        after = await until(
            lambda: client.post("/v1/requests", json=invoice(), headers=key),
            lambda r: r.status_code == 202,
        )
    assert before.status_code == 202
    assert during.status_code == 503
    assert during.headers["retry-after"] == "5"
    assert during.headers["content-type"] == "application/problem+json"
    assert "did not acknowledge" in during.json()["detail"]
    assert readiness.status_code == 503
    assert readiness.json()["checks"]["kafka"] != "ok"
    # the retry is the same request: if the send that timed out was stored after all, it
    # carries the same request and event ids, which consumers deduplicate
    records = await read_topic(
        kafka_settings, kafka_settings.topic(Topic.INTAKE_REQUESTS), count=2, timeout=10
    )
    retried = [decode(r.value) for r in records if r.key == after.json()["request_id"].encode()]
    assert retried
    assert len({e.event_id for e in retried}) == 1


async def test_intake_does_not_start_without_kafka(database_url) -> None:
    with pytest.raises(KafkaConnectionError):
        await build_service(
            kafka=KafkaSettings(bootstrap="127.0.0.1:9"),
            database=DatabaseSettings(url=database_url),
            http=HttpSettings(),
            intake=IntakeSettings(),
        )
