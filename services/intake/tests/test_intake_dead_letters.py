"""A request the workflow dead-letters can never finish: intake's status rejects it, with the
reason, and reading dead letters never dead-letters anything again."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from flowcase.devstack.topic_reader import read_topic
from flowcase.events.kafka import ConsumerRunner, EventProducer, PoisonMessage
from flowcase.events.kafka.consumer import DeadLetterHeader, Record
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.intake.identity import request_id_for_submission
from flowcase.intake.status_projector import GROUP_ID


async def test_a_request_the_workflow_dead_letters_is_rejected_with_its_reason(
    kafka_settings: KafkaSettings,
    producer: EventProducer,
    start_intake: Any,
    publish: Any,
    definition: Any,
    invoice: Any,
    until: Any,
) -> None:
    await publish(definition())
    workflow_group = f"workflow-{uuid.uuid4().hex[:8]}"
    submission_id = f"dead-{uuid.uuid4().hex[:8]}"
    request_id = request_id_for_submission(submission_id)
    requests_topic = kafka_settings.topic(Topic.INTAKE_REQUESTS)
    # Bytes that are no envelope, on the request's partition ahead of it: their dead letter
    # must be passed over, not dead-lettered again.
    await producer.send_raw(
        requests_topic, b"not an envelope", key=str(request_id).encode(), headers=[]
    )

    async def refuse(record: Record) -> None:
        raise PoisonMessage("date value out of range", reason="handler-failed")

    # The workflow's consumer, as far as dead-lettering goes: the real runner, its real headers.
    workflow = ConsumerRunner(
        kafka_settings,
        group_id=workflow_group,
        topics=[requests_topic],
        handler=refuse,
        deadletter=producer,
    )
    async with start_intake(workflow_consumer_group=workflow_group) as (_, client):
        receipt = (
            await client.post("/v1/requests", json=invoice(submission_id=submission_id))
        ).json()
        assert receipt["request_id"] == str(request_id)
        running = asyncio.create_task(workflow.run())
        try:
            final = await until(
                lambda: client.get(receipt["status_url"]),
                lambda answer: answer.json()["status"] == "rejected",
                timeout=60,
            )
        finally:
            workflow.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await running
    last = final.json()["timeline"][-1]
    assert last["event_type"] == "deadletter"
    assert "handler-failed" in last["summary"]
    assert "date value out of range" in last["summary"]
    # The bytes are dead-lettered by both consumers of the requests topic, the request by the
    # workflow; no dead letter is ever dead-lettered again.
    deadletter_topic = kafka_settings.topic(Topic.DEADLETTER)
    dead = await read_topic(kafka_settings, deadletter_topic, count=3)
    origins = sorted(
        (
            dict(r.headers)[DeadLetterHeader.CONSUMER_GROUP].decode(),
            dict(r.headers)[DeadLetterHeader.ORIGINAL_TOPIC].decode(),
        )
        for r in dead
    )
    assert origins == sorted(
        [
            (workflow_group, requests_topic),
            (workflow_group, requests_topic),
            (GROUP_ID + kafka_settings.topic_suffix, requests_topic),
        ]
    )
