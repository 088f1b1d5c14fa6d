"""The HTTP intake API against the real broker and database."""

from __future__ import annotations

import time

from flowcase.devstack.topic_reader import read_topic
from flowcase.events.catalogue.intake import RequestSubmitted
from flowcase.events.codec import decode
from flowcase.events.topics import Topic


async def test_an_accepted_request_is_on_the_topic_before_the_answer(
    start_intake, publish, definition, invoice, kafka_settings
) -> None:
    await publish(definition())
    t0 = time.monotonic()
    async with start_intake() as (_, client):
        print("ready after", time.monotonic() - t0)
        response = await client.post("/v1/requests", json=invoice(submission_id="crm-1"))
        assert response.status_code == 202, response.text
        body = response.json()
        records = await read_topic(
            kafka_settings, kafka_settings.topic(Topic.INTAKE_REQUESTS), count=1, timeout=5
        )
        status = await client.get(body["status_url"])
    print("total", time.monotonic() - t0)
    assert len(records) == 1
    event = decode(records[0].value)
    assert isinstance(event.payload, RequestSubmitted)
    assert str(event.request_id) == body["request_id"]
    assert records[0].key == body["request_id"].encode()
    assert event.payload.channel == "http"
    assert event.payload.payload == invoice()["payload"]
    assert status.status_code == 200
    assert status.json()["status"] == "submitted"
