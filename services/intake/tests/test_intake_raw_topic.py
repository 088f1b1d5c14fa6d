"""Raw submissions on `flowcase.intake.submissions`, against the real broker and database."""

from __future__ import annotations

import base64
import json

from flowcase.devstack.topic_reader import read_topic
from flowcase.events.catalogue.intake import RequestRejected, RequestSubmitted
from flowcase.events.codec import decode
from flowcase.events.topics import Topic


async def test_each_raw_submission_is_accepted_or_rejected_with_its_reasons(
    start_intake, publish, definition, invoice, producer, kafka_settings
) -> None:
    await publish(definition())
    raw_topic = kafka_settings.topic(Topic.INTAKE_SUBMISSIONS)
    oversized = json.dumps(invoice(payload={"invoice_id": "x" * 5000, "amount": 1})).encode()
    refused = {
        "malformed": b'{"request_type": "invoice_approval",',
        "not-an-object": b'["invoice_approval"]',
        "wrong-types": json.dumps(invoice(requester=42, priority=["high"])).encode(),
        "unknown-type": json.dumps(invoice(request_type="refund")).encode(),
        "invalid-payload": json.dumps(invoice(payload={"amount": -5})).encode(),
        "oversized": oversized,
        "changed-duplicate": json.dumps(invoice(submission_id="crm-1", priority="low")).encode(),
    }
    valid = json.dumps(invoice(submission_id="crm-1")).encode()
    async with start_intake() as _:
        await producer.send_raw(raw_topic, valid, key=b"crm-1", headers=[])
        for name, value in refused.items():
            await producer.send_raw(raw_topic, value, key=name.encode(), headers=[])
        await producer.send_raw(raw_topic, valid, key=b"crm-1", headers=[])  # a duplicate
        last = json.dumps(invoice(submission_id="crm-2")).encode()
        await producer.send_raw(raw_topic, last, key=b"crm-2", headers=[])
        rejected = await read_topic(
            kafka_settings, kafka_settings.topic(Topic.INTAKE_REJECTED), count=len(refused)
        )
        accepted = await read_topic(
            kafka_settings, kafka_settings.topic(Topic.INTAKE_REQUESTS), count=2
        )
    requests = []
    for record in accepted:
        request = decode(record.value).payload
        assert isinstance(request, RequestSubmitted)
        requests.append(request)
    assert sorted((r.submission_id for r in requests), key=str) == ["crm-1", "crm-2"]
    assert {r.channel for r in requests} == {"kafka"}
    rejections = {}
    for record in rejected:
        payload = decode(record.value).payload
        assert isinstance(payload, RequestRejected)
        rejections[base64.b64decode(payload.original_base64)] = payload
    assert set(rejections) == set(refused.values())  # the original bytes, whole

    def reasons(name: str) -> dict[str, str]:
        return {r.field: r.reason for r in rejections[refused[name]].reasons}

    assert reasons("malformed")[""].startswith("not valid JSON")
    assert reasons("not-an-object") == {"": "a submission is a JSON object, not an array"}
    assert set(reasons("wrong-types")) == {"requester", "priority"}
    assert "unknown request type 'refund'" in reasons("unknown-type")["request_type"]
    assert set(reasons("invalid-payload")) == {"payload.amount", "payload.invoice_id"}
    assert reasons("oversized") == {
        "": f"the submission is {len(oversized)} bytes, over the limit of 4096 bytes"
    }
    assert "already accepted as request" in reasons("changed-duplicate")["submission_id"]
    assert rejections[refused["unknown-type"]].request_type == "refund"
    assert rejections[refused["changed-duplicate"]].submission_id == "crm-1"


async def test_a_raw_submission_becomes_readable_as_a_request(
    start_intake, publish, definition, invoice, producer, kafka_settings, until, tokens
) -> None:
    await publish(definition())
    async with start_intake() as (_, client):
        await producer.send_raw(
            kafka_settings.topic(Topic.INTAKE_SUBMISSIONS),
            json.dumps(invoice(submission_id="erp-5")).encode(),
            key=b"erp-5",
            headers=[],
        )
        [record] = await read_topic(
            kafka_settings, kafka_settings.topic(Topic.INTAKE_REQUESTS), count=1
        )
        request_id = decode(record.value).request_id

        async def status():
            # Submitted on the raw topic, not by the test's client: an admin reads it.
            return await client.get(f"/v1/requests/{request_id}", headers=tokens.admin())

        response = await until(status, lambda r: r.status_code == 200)
        # the same submission id over HTTP is the same request
        over_http = await client.post("/v1/requests", json=invoice(submission_id="erp-5"))
    assert response.json()["channel"] == "kafka"
    assert response.json()["submission_id"] == "erp-5"
    assert over_http.status_code == 202
    assert over_http.json()["request_id"] == str(request_id)
