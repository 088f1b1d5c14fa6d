"""The HTTP intake API against the real broker and database."""

from __future__ import annotations

import asyncio
import base64
import json

from flowcase.devstack.topic_reader import read_topic
from flowcase.events.catalogue.intake import RequestSubmitted
from flowcase.events.codec import decode
from flowcase.events.topics import Topic
from flowcase.intake.postgres import PostgresStatusStore
from flowcase.intake.status_service import StatusService


async def requests_on_topic(kafka_settings, count: int) -> list:
    records = await read_topic(
        kafka_settings, kafka_settings.topic(Topic.INTAKE_REQUESTS), count=count, timeout=10
    )
    return [decode(r.value) for r in records]


async def test_an_accepted_request_is_on_the_topic_when_the_answer_comes(
    start_intake, publish, definition, invoice, kafka_settings
) -> None:
    await publish(definition())
    async with start_intake() as (_, client):
        response = await client.post(
            "/v1/requests",
            json=invoice(submitted_at="2026-10-01T08:00:00+02:00", priority="high"),
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert response.headers["location"] == body["status_url"]
        # acks=all came back before the 202: the record is already there (the timeout is the
        # reading consumer's own start, which a loaded machine can stretch past a second)
        records = await read_topic(
            kafka_settings, kafka_settings.topic(Topic.INTAKE_REQUESTS), count=1, timeout=5
        )
        status = await client.get(body["status_url"])
    [event] = [decode(r.value) for r in records]
    assert records[0].key == body["request_id"].encode()
    assert isinstance(event.payload, RequestSubmitted)
    assert str(event.request_id) == body["request_id"]
    assert event.payload.channel == "http"
    assert event.payload.priority == "high"
    assert event.payload.payload == invoice()["payload"]
    assert event.payload.submitted_at.isoformat() == "2026-10-01T06:00:00+00:00"
    assert event.occurred_at == event.payload.submitted_at  # a backfill keeps its event time
    assert status.status_code == 200
    detail = status.json()
    assert detail["status"] == "submitted"
    assert detail["timeline"][0]["event_type"] == "intake.RequestSubmitted"


async def test_every_refusal_is_a_problem_naming_each_field(
    start_intake, publish, definition, invoice, kafka_settings
) -> None:
    await publish(definition())
    async with start_intake() as (_, client):
        unknown = await client.post("/v1/requests", json=invoice(request_type="refund"))
        invalid = await client.post(
            "/v1/requests",
            json=invoice(priority="whenever", payload={"amount": "ten", "vendor": 3}),
        )
        malformed = await client.post(
            "/v1/requests",
            content=b'{"request_type": ',
            headers={"content-type": "application/json"},
        )
        too_large = await client.post(
            "/v1/requests", json=invoice(payload={"invoice_id": "x" * 5000, "amount": 1})
        )
        bad_key = await client.post(
            "/v1/requests", json=invoice(), headers={"Idempotency-Key": "k" * 201}
        )
        accepted = await client.post("/v1/requests", json=invoice())
    for response in (unknown, invalid, malformed, too_large, bad_key):
        assert response.headers["content-type"] == "application/problem+json"
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [
        {
            "field": "request_type",
            "reason": "unknown request type 'refund' (published types: invoice_approval)",
        }
    ]
    assert invalid.status_code == 422
    errors = {e["field"]: e["reason"] for e in invalid.json()["errors"]}
    assert set(errors) == {"priority", "payload.amount", "payload.vendor", "payload.invoice_id"}
    assert errors["payload.invoice_id"] == "Field required"
    assert invalid.json()["detail"] == "4 fields are invalid"
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == ""
    assert malformed.json()["errors"][0]["reason"].startswith("not valid JSON")
    assert too_large.status_code == 413
    assert bad_key.status_code == 422
    assert bad_key.json()["errors"][0]["field"] == "header.Idempotency-Key"
    # only the one valid submission reached the topic
    assert accepted.status_code == 202
    events = await requests_on_topic(kafka_settings, 1)
    assert [str(e.request_id) for e in events] == [accepted.json()["request_id"]]


async def test_an_idempotency_key_holds_across_a_restart(
    start_intake, publish, definition, invoice, kafka_settings
) -> None:
    await publish(definition())
    key = {"Idempotency-Key": "order-77"}
    async with start_intake() as (_, client):
        first = await client.post("/v1/requests", json=invoice(), headers=key)
        again = await client.post("/v1/requests", json=invoice(), headers=key)
        other_requester = await client.post(
            "/v1/requests", json=invoice(requester="someone-else"), headers=key
        )
    async with start_intake() as (_, client):
        # the same body with its keys reordered is the same body
        reordered = dict(reversed(list(invoice().items())))
        after_restart = await client.post("/v1/requests", json=reordered, headers=key)
        changed = await client.post("/v1/requests", json=invoice(priority="urgent"), headers=key)
    assert first.status_code == 202
    assert "idempotent-replayed" not in first.headers
    request_id = first.json()["request_id"]
    assert again.status_code == after_restart.status_code == 202
    assert again.json()["request_id"] == after_restart.json()["request_id"] == request_id
    assert after_restart.headers["idempotent-replayed"] == "true"
    assert other_requester.status_code == 202  # keys are scoped per requester
    assert other_requester.json()["request_id"] != request_id
    assert changed.status_code == 409
    assert changed.json()["request_id"] == request_id
    assert "order-77" in changed.json()["detail"]
    events = await requests_on_topic(kafka_settings, 2)
    assert sorted(str(e.request_id) for e in events) == sorted(
        [request_id, other_requester.json()["request_id"]]
    )


async def test_a_retry_racing_the_original_answers_once_its_status_is_readable(
    start_intake, publish, definition, invoice, monkeypatch
) -> None:
    """The original's reservation commits a moment before its status is written; a retry with
    the same key, waiting on that reservation, must not answer (a replay) before the status it
    points at can be read."""
    await publish(definition())
    writing, released, polled = asyncio.Event(), asyncio.Event(), asyncio.Event()
    project, holds = StatusService.project, PostgresStatusStore.holds

    async def slow_project(self, envelopes):
        writing.set()
        await released.wait()
        return await project(self, envelopes)

    async def watched_holds(self, request_id):
        polled.set()
        return await holds(self, request_id)

    monkeypatch.setattr(StatusService, "project", slow_project)
    monkeypatch.setattr(PostgresStatusStore, "holds", watched_holds)
    key = {"Idempotency-Key": "order-race"}
    async with start_intake() as (_, client):
        first = asyncio.create_task(client.post("/v1/requests", json=invoice(), headers=key))
        try:
            await asyncio.wait_for(writing.wait(), 30)
            retry = asyncio.create_task(client.post("/v1/requests", json=invoice(), headers=key))
            looking = asyncio.create_task(polled.wait())
            await asyncio.wait({retry, looking}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            retried_early = retry.done()
        finally:
            released.set()  # whatever happened, the original may finish (and the service stop)
        answers = await asyncio.gather(first, retry)
        status = await client.get(f"/v1/requests/{answers[1].json()['request_id']}")

    assert looking.done()
    assert not retried_early  # the replay waited for the original's status

    assert [a.status_code for a in answers] == [202, 202]
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert status.status_code == 200


async def test_a_submission_id_is_one_request(
    start_intake, publish, definition, invoice, kafka_settings
) -> None:
    await publish(definition())
    async with start_intake() as (_, client):
        first = await client.post("/v1/requests", json=invoice(submission_id="crm-9"))
        again = await client.post("/v1/requests", json=invoice(submission_id="crm-9"))
        changed = await client.post(
            "/v1/requests", json=invoice(submission_id="crm-9", priority="low")
        )
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert changed.status_code == 409
    assert len(await requests_on_topic(kafka_settings, 1)) == 1


async def test_the_request_types_follow_the_definitions_topic(
    start_intake, publish, definition, invoice, until
) -> None:
    async with start_intake() as (_, client):
        # an empty definitions topic is caught up at once: ready, with nothing to accept
        empty = await client.get("/v1/request-types")
        refused = await client.post("/v1/requests", json=invoice())
        await publish(definition(version=1))
        await publish(definition(version=2, schema={"type": "object", "required": ["po"]}))

        async def types():
            return (await client.get("/v1/request-types")).json()["items"]

        items = await until(types, lambda items: items and items[0]["version"] == 2)
        now_refused = await client.post("/v1/requests", json=invoice())
    assert empty.json() == {"items": []}
    assert refused.status_code == 422
    assert "none yet" in refused.json()["errors"][0]["reason"]
    assert items[0]["request_type"] == "invoice_approval"
    assert items[0]["request_schema"] == {"type": "object", "required": ["po"]}
    assert now_refused.json()["errors"] == [{"field": "payload.po", "reason": "Field required"}]


async def test_requests_are_listed_newest_first_page_by_page(
    start_intake, publish, definition, invoice
) -> None:
    await publish(definition(), definition(request_type="password_reset"))
    async with start_intake() as (_, client):
        ids = []
        for n in range(5):
            response = await client.post(
                "/v1/requests",
                json=invoice(
                    request_type="password_reset" if n == 2 else "invoice_approval",
                    submitted_at=f"2026-11-0{n + 1}T00:00:00Z",
                ),
            )
            ids.append(response.json()["request_id"])
        pages, cursor = [], None
        while True:
            params = {"type": "invoice_approval", "limit": 2} | (
                {"cursor": cursor} if cursor else {}
            )
            page = (await client.get("/v1/requests", params=params)).json()
            pages.append([item["request_id"] for item in page["items"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        since = await client.get(
            "/v1/requests", params={"since": "2026-11-04T00:00:00", "status": "submitted"}
        )
        unknown = await client.get("/v1/requests/0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69")
        not_an_id = await client.get("/v1/requests/42")
        bad_cursor = await client.get("/v1/requests", params={"cursor": "bm9wZQ"})
        too_many = await client.get("/v1/requests", params={"limit": 1000})
        bad_status = await client.get("/v1/requests", params={"status": "lost"})
    assert pages == [[ids[4], ids[3]], [ids[1], ids[0]]]
    assert [i["request_id"] for i in since.json()["items"]] == [ids[4], ids[3]]
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert not_an_id.status_code == 422
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"] == [
        {"field": "cursor", "reason": "not a cursor this API issued"}
    ]
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "query.limit"
    assert bad_status.json()["errors"][0]["field"] == "query.status"


async def test_the_openapi_document_has_examples_and_the_problem_shape(start_intake) -> None:
    async with start_intake() as (_, client):
        document = (await client.get("/openapi.json")).json()
    operations = {
        (path, method): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if path.startswith("/v1/")
    }
    assert set(operations) == {
        ("/v1/requests", "post"),
        ("/v1/requests", "get"),
        ("/v1/requests/{request_id}", "get"),
        ("/v1/request-types", "get"),
    }
    schemas = document["components"]["schemas"]
    assert "errors" in schemas["Problem"]["properties"]
    for (path, method), operation in operations.items():
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                content = response["content"]["application/problem+json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Problem"}, path
                assert "example" in content, (path, method, status)
            elif status.startswith("2"):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert schemas[ref.rsplit("/", 1)[1]].get("examples"), (path, method, status)
    body = operations[("/v1/requests", "post")]["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == {"request", "backfill"}
    assert body["schema"]["properties"]["priority"]["enum"] == ["low", "normal", "high", "urgent"]


async def test_the_http_span_of_a_submission_names_its_request(
    start_intake, publish, definition, invoice, spans
) -> None:
    """An SRE searching traces by request id finds the intake request that started the journey."""
    await publish(definition())
    async with start_intake() as (_, client):
        response = await client.post("/v1/requests", json=invoice())
    request_id = response.json()["request_id"]
    tagged = [
        s.name
        for s in spans.get_finished_spans()
        if s.attributes.get("flowcase.request_id") == request_id
    ]
    assert any("POST" in name for name in tagged), tagged


async def test_a_body_that_is_not_json_in_utf_8_is_415_and_json_with_its_charset_is_read(
    start_intake, publish, definition, invoice
) -> None:
    await publish(definition())
    body = json.dumps(invoice()).encode()
    async with start_intake() as (_, client):
        refused = {
            content_type: await client.post(
                "/v1/requests",
                content=body
                if content_type != "application/json; charset=utf-16"
                else (json.dumps(invoice()).encode("utf-16")),
                headers={"Content-Type": content_type} if content_type else {},
            )
            for content_type in (
                "",
                "text/plain",
                "application/x-www-form-urlencoded",
                "image/png",
                "application/json; charset=utf-16",
            )
        }
        accepted = await client.post(
            "/v1/requests",
            content=body,
            headers={"Content-Type": "application/json; charset=UTF-8"},
        )
        not_a_number = await client.post(
            "/v1/requests",
            content=body.replace(b'"amount": ', b'"amount": NaN, "was": '),
            headers={"Content-Type": "application/json"},
        )
    for content_type, response in refused.items():
        assert response.status_code == 415, (content_type, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "application/json" in response.json()["detail"]
    assert accepted.status_code == 202, accepted.text
    # Judged once, by intake's own reading of the body, with the shared boundary policy.
    assert not_a_number.status_code == 422, not_a_number.text
    assert [e["field"] for e in not_a_number.json()["errors"]] == ["payload.amount"]


async def test_a_listing_past_the_stores_ranges_is_422_naming_the_parameter(
    start_intake, publish, definition
) -> None:
    await publish(definition())
    past_int64 = base64.urlsafe_b64encode(b"v1:" + b"9" * 30).decode().rstrip("=")
    async with start_intake() as (_, client):
        answers = {
            "cursor": await client.get("/v1/requests", params={"cursor": past_int64}),
            "since": await client.get(
                "/v1/requests", params={"since": "0001-01-01T00:00:00+01:00"}
            ),
            "since ": await client.get("/v1/requests", params={"since": "9999-12-31T23:59:59Z"}),
        }
    for name, answer in answers.items():
        assert answer.status_code == 422, (name, answer.text)
        assert answer.json()["errors"][0]["field"].endswith(name.strip()), answer.text
