"""The case service on Kafka: escalations in (one case each), case events out through the relay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from eventsourcing.persistence import Tracking

from flowcase.case.aggregate import case_id_for_request
from flowcase.case.catalogue_mapping import to_envelopes
from flowcase.case.commands import AddNote
from flowcase.case.composition import CaseAssembly, build_service
from flowcase.devstack.topic_reader import read_topic
from flowcase.events import Envelope, Topic, decode
from flowcase.events.catalogue.case import CaseOpened, CaseResolved
from flowcase.events.catalogue.workflow import EscalatedToCase, InstanceStarted
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.eventstore import Relay, stable_event_id
from flowcase.runtime import HttpSettings

Act = Callable[..., Awaitable[httpx.Response]]
Open = Callable[..., Awaitable[UUID]]


async def published_case_events(settings: KafkaSettings, count: int) -> list[Envelope]:
    records = await read_topic(settings, settings.topic(Topic.CASE_EVENTS), count=count)
    return [decode(record.value or b"") for record in records]


async def until_found(http: httpx.AsyncClient, case_id: UUID, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await http.get(f"/v1/cases/{case_id}")
        if response.status_code == 200:
            return response.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"case {case_id} never opened")


async def test_an_escalation_delivered_twice_opens_one_case_whose_events_reach_the_topic(
    case_service: CaseAssembly,
    http: httpx.AsyncClient,
    act: Act,
    kafka_settings: KafkaSettings,
    escalation: EscalatedToCase,
) -> None:
    request_id = uuid4()
    # Submitted an hour ago, promised within four: three hours left when the case opens.
    submitted = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    due = submitted + timedelta(hours=4)
    escalated = escalation.model_copy(
        update={"request_id": request_id, "submitted_at": submitted, "due_at": due}
    )
    envelope = Envelope.wrap(escalated, source="workflow", request_id=request_id)
    started = InstanceStarted(
        request_id=request_id,
        instance_id=uuid4(),
        request_type="access_complaint",
        process="access-complaint",
        definition_version=1,
    )
    async with EventProducer(kafka_settings, client_id="workflow-in-tests") as producer:
        await producer.publish(Envelope.wrap(started, source="workflow", request_id=request_id))
        first = await producer.publish(envelope)
        again = await producer.publish(envelope)  # the workflow's relay published it again

    case_id = case_id_for_request(request_id)
    case = await until_found(http, case_id)
    app = case_service.service.application
    tracking = Tracking(
        f"{kafka_settings.topic(Topic.WORKFLOW_EVENTS)}:{again.partition}", again.offset
    )
    deadline = time.monotonic() + 20
    while not await asyncio.to_thread(app.consumed, tracking):
        assert time.monotonic() < deadline, "the second delivery was never consumed"
        await asyncio.sleep(0.05)
    assert [e.originator_version for e in app.history(case_id)] == [1]
    assert case["request_id"] == str(request_id)
    assert case["context"] == escalation.intake_payload
    assert case["workflow_history"][0]["step"] == "check-fields"
    # The request's clock goes on in the case: the worker sees the time left.
    assert datetime.fromisoformat(case["submitted_at"]) == submitted
    assert datetime.fromisoformat(case["due_at"]) == due
    assert 0 < case["remaining_seconds"] <= 3 * 3600

    # The very message redelivered (same partition and offset): its tracking record says so.
    record = ConsumerRecord(
        topic=kafka_settings.topic(Topic.WORKFLOW_EVENTS),
        partition=first.partition,
        offset=first.offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=None,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=[],
    )
    await case_service.escalations.handle(envelope, record)

    await act(case_id, "notes", 1, text="Lockout confirmed")
    resolved = await act(
        case_id,
        "resolution",
        2,
        actor="agent-42",
        outcome_code="access_restored",
        rationale="Token replaced",
        relied_on=["n-1"],
    )
    assert resolved.status_code == 200, resolved.text

    published = await published_case_events(kafka_settings, 3)
    assert [e.event_type for e in published] == [
        "case.CaseOpened",
        "case.NoteAdded",
        "case.CaseResolved",
    ]
    assert all(e.request_id == request_id and e.source == "case" for e in published)
    assert [e.event_id for e in published] == [stable_event_id(case_id, v) for v in (1, 2, 3)]
    opened, note, resolution = published
    assert isinstance(opened.payload, CaseOpened)
    assert (opened.payload.submitted_at, opened.payload.due_at) == (submitted, due)
    assert opened.actor is None
    assert note.actor == "agent-7"
    assert isinstance(resolution.payload, CaseResolved)
    assert resolution.payload.request_id == request_id
    assert resolution.actor == "agent-42"
    assert (await http.get(f"/v1/cases/{case_id}")).json()["remaining_seconds"] is None
    history = (await http.get(f"/v1/cases/{case_id}/history")).json()["events"]
    assert [e.occurred_at.isoformat() for e in published] == [
        e["occurred_at"].replace("Z", "+00:00") for e in history
    ]


@pytest.fixture
async def idle_service(
    kafka_settings: KafkaSettings, database_url: str
) -> AsyncIterator[CaseAssembly]:
    """The service built but its workers not running: the test drives the relays itself."""
    assembly = await build_service(
        kafka=kafka_settings, database=DatabaseSettings(url=database_url), http=HttpSettings()
    )
    try:
        yield assembly
    finally:
        await assembly.close()


async def test_a_relay_restarted_mid_stream_loses_no_event(
    idle_service: CaseAssembly, kafka_settings: KafkaSettings
) -> None:
    app = idle_service.service.application

    def write(cases: int, notes: int) -> set[UUID]:
        ids = set()
        for n in range(cases):
            case_id = app.open_case(f"Case {n}", actor="sup-1")
            for version in range(1, notes + 1):
                app.execute(
                    case_id,
                    AddNote(text=f"note {version}", expected_version=version),
                    actor="sup-1",
                )
            ids |= {stable_event_id(case_id, v) for v in range(1, notes + 2)}
        return ids

    expected = await asyncio.to_thread(write, 4, 9)  # 40 events

    def relay(batch_size: int) -> Relay:
        return Relay(
            name="case-events",
            application=app,
            to_envelopes=to_envelopes,
            producer=idle_service.producer,
            pool=idle_service.pool,
            batch_size=batch_size,
        )

    crashing = relay(batch_size=4)
    running = asyncio.create_task(crashing.run())
    for _ in range(4_000):
        if await crashing.position() >= 12:
            break
        await asyncio.sleep(0.005)
    running.cancel()  # a crash: no orderly stop, wherever it was
    with pytest.raises(asyncio.CancelledError):
        await running
    assert 0 < await crashing.position() < 40

    expected |= await asyncio.to_thread(write, 1, 4)  # written while no relay runs
    restarted = relay(batch_size=500)
    task = asyncio.create_task(restarted.run())
    published = await published_case_events(kafka_settings, len(expected))
    restarted.stop()
    await task

    assert {e.event_id for e in published} == expected
    assert await restarted.backlog() == 0
    versions: dict[UUID, list[int]] = {}
    for envelope in published:
        case_id = envelope.payload.case_id  # type: ignore[attr-defined]
        version = (
            1
            if envelope.event_type == "case.CaseOpened"
            else int(
                envelope.payload.note_id.removeprefix("n-")  # type: ignore[attr-defined]
            )
            + 1
        )
        versions.setdefault(case_id, []).append(version)
    for case_versions in versions.values():
        # In order per case; a batch re-published after the crash may repeat, never skip.
        assert list(dict.fromkeys(case_versions)) == list(range(1, max(case_versions) + 1))
