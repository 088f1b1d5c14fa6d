"""An escalated request's promise that falls due in its case is stated broken once, by the case
service, even when that service is killed (kill -9) before the due time and started again."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx

from flowcase.case.aggregate import Case, case_id_for_request
from flowcase.case.composition import build_service
from flowcase.devstack.dedicated import service_alone
from flowcase.devstack.dev_tokens import Tokens
from flowcase.devstack.topic_reader import read_topic
from flowcase.events import Envelope, Topic, decode
from flowcase.events.catalogue.case import PromiseBroken
from flowcase.events.catalogue.workflow import EscalatedToCase
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime import HttpSettings
from flowcase.runtime.settings import AuthSettings

# Long enough for the service to open the case before it falls due, on a busy machine.
PROMISE_LEFT = timedelta(seconds=20)


async def test_a_promise_broken_in_the_case_is_stated_once_through_a_kill_9(
    kafka_settings: KafkaSettings,
    database_url: str,
    auth_settings: AuthSettings,
    escalation: EscalatedToCase,
    tokens: Tokens,
    tmp_path: Path,
) -> None:
    case_service = service_alone(
        "case",
        tmp_path / "home",
        kafka=kafka_settings,
        database_url=database_url,
        env={"FLOWCASE_CASE_PROMISE_WATCH_SECONDS": "0.2"},
    )
    request_id = uuid4()
    case_id = case_id_for_request(request_id)
    try:
        await asyncio.to_thread(case_service.start)
        due = datetime.now(UTC) + PROMISE_LEFT
        escalated = escalation.model_copy(
            update={
                "request_id": request_id,
                "submitted_at": due - timedelta(hours=4),
                "due_at": due,
            }
        )
        async with EventProducer(kafka_settings, client_id="workflow-in-tests") as producer:
            await producer.publish(
                Envelope.wrap(escalated, source="workflow", request_id=request_id)
            )
        async with httpx.AsyncClient(base_url=case_service.url, headers=tokens.admin()) as http:
            deadline = time.monotonic() + 60
            while (await http.get(f"/v1/cases/{case_id}")).status_code != 200:
                assert time.monotonic() < deadline, "the case never opened"
                await asyncio.sleep(0.1)
        case_service.kill()
        assert datetime.now(UTC) < due, "the case opened too late to be killed before its due time"
        # The promise falls due while the service is away.
        await asyncio.sleep((due - datetime.now(UTC)).total_seconds() + 0.1)
        await asyncio.to_thread(case_service.start)
        # The relay killed between publishing and recording its position publishes the opening
        # again, under the same event id: read on until the statement is there, then one event
        # each, whatever the copies.
        topic, count = kafka_settings.topic(Topic.CASE_EVENTS), 2
        while True:
            records = await read_topic(kafka_settings, topic, count=count, timeout=60)
            published = list(
                {e.event_id: e for e in (decode(r.value or b"") for r in records)}.values()
            )
            if "case.PromiseBroken" in {e.event_type for e in published}:
                break
            count = len(records) + 1
        assert [e.event_type for e in published] == ["case.CaseOpened", "case.PromiseBroken"]
        broken = published[1].payload
        assert isinstance(broken, PromiseBroken)
        assert (broken.case_id, broken.request_id, broken.due_at) == (case_id, request_id, due)
        assert published[1].actor is None  # the platform stated it, not a person
    finally:
        case_service.kill()

    # The same store looked at again finds it stated: nothing more to say.
    assembly = await build_service(
        kafka=kafka_settings,
        database=DatabaseSettings(url=database_url),
        http=HttpSettings(),
        auth=auth_settings,
    )
    try:
        await assembly.projector.catch_up()
        assert await assembly.promises.look() == 0
        history = await asyncio.to_thread(assembly.service.application.history, case_id)
        assert [type(e) for e in history].count(Case.PromiseBroken) == 1
        verified = await asyncio.to_thread(assembly.service.application.verify_chain, case_id)
        assert verified.intact
    finally:
        await assembly.close()
