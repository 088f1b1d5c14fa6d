"""The relay and tracked consumption against the real broker and database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import RecordConflictError

from flowcase.devstack.topic_reader import read_topic
from flowcase.events import Envelope, Topic, decode
from flowcase.events.catalogue.case import NoteAdded
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import KafkaSettings
from flowcase.eventstore import (
    Relay,
    TrackedApplication,
    postgres_env,
    stable_event_id,
    tracking_of,
)


class Notebook(Aggregate):
    @event("Opened")
    def __init__(self) -> None:
        self.lines: list[str] = []

    # Declared, not named in @event("Written"), so that the type checker knows the class.
    class Written(Aggregate.Event):
        text: str

    @event(Written)
    def write(self, text: str) -> None:
        self.lines.append(text)


class Notebooks(TrackedApplication):
    pass


def to_envelopes(domain_event: Any) -> Sequence[Envelope]:
    if not isinstance(domain_event, Notebook.Written):
        return ()
    payload = NoteAdded(
        case_id=domain_event.originator_id,
        note_id=f"n-{domain_event.originator_version}",
        text=domain_event.text,
    )
    return (
        Envelope.wrap(
            payload,
            source="test",
            occurred_at=domain_event.timestamp,
            event_id=stable_event_id(domain_event.originator_id, domain_event.originator_version),
        ),
    )


@pytest.fixture
async def notebooks(database_url: str) -> Notebooks:
    return Notebooks(env=postgres_env(database_url))


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
        yield pool


def _notebook_with(lines: int) -> Notebook:
    book = Notebook()
    for i in range(lines):
        book.write(f"line {i}")
    return book


async def _published(settings: KafkaSettings, count: int) -> list[Envelope]:
    records = await read_topic(settings, settings.topic(Topic.CASE_EVENTS), count=count)
    return [decode(r.value) for r in records]


async def test_the_relay_publishes_stored_events_in_order_with_stable_ids(
    notebooks: Notebooks, pool: asyncpg.Pool, kafka_settings: KafkaSettings
) -> None:
    book = _notebook_with(5)
    notebooks.save(book)
    async with EventProducer(kafka_settings, client_id="relay") as producer:
        relay = Relay(
            name="notes",
            application=notebooks,
            to_envelopes=to_envelopes,
            producer=producer,
            pool=pool,
        )
        task = asyncio.create_task(relay.run())
        published = await _published(kafka_settings, 5)
        book.write("written while the relay runs")
        notebooks.save(book)
        published = await _published(kafka_settings, 6)
        relay.stop()
        await task
    assert [e.payload.text for e in published if isinstance(e.payload, NoteAdded)] == [
        *(f"line {i}" for i in range(5)),
        "written while the relay runs",
    ]
    assert [e.event_id for e in published] == [stable_event_id(book.id, v) for v in range(2, 8)]
    assert await relay.backlog() == 0


async def test_a_restarted_relay_goes_on_from_its_recorded_position(
    notebooks: Notebooks, pool: asyncpg.Pool, kafka_settings: KafkaSettings
) -> None:
    notebooks.save(_notebook_with(3))
    async with EventProducer(kafka_settings, client_id="relay") as producer:
        first = Relay(
            name="notes",
            application=notebooks,
            to_envelopes=to_envelopes,
            producer=producer,
            pool=pool,
            batch_size=2,
        )
        assert await first.process_next_batch() == 2  # stopped mid-stream, after one batch
        notebooks.save(_notebook_with(2))
        second = Relay(
            name="notes",
            application=notebooks,
            to_envelopes=to_envelopes,
            producer=producer,
            pool=pool,
        )
        task = asyncio.create_task(second.run())
        published = await _published(kafka_settings, 5)
        second.stop()
        await task
    assert len(published) == 5
    assert len({e.event_id for e in published}) == 5


async def test_a_crash_before_the_position_is_recorded_republishes_the_same_ids(
    notebooks: Notebooks, pool: asyncpg.Pool, kafka_settings: KafkaSettings
) -> None:
    notebooks.save(_notebook_with(2))
    async with EventProducer(kafka_settings, client_id="relay") as producer:
        relay = Relay(
            name="notes",
            application=notebooks,
            to_envelopes=to_envelopes,
            producer=producer,
            pool=pool,
        )
        await relay.process_next_batch()
        async with pool.acquire() as conn:  # as if the process died before recording
            await conn.execute("DELETE FROM flowcase_log_position")
        again = Relay(
            name="notes",
            application=notebooks,
            to_envelopes=to_envelopes,
            producer=producer,
            pool=pool,
        )
        task = asyncio.create_task(again.run())
        published = await _published(kafka_settings, 4)
        again.stop()
        await task
    ids = [e.event_id for e in published]
    assert len(ids) == 4
    assert ids[:2] == ids[2:]  # duplicates carry the same ids, so consumers drop them


def _record(offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="flowcase.intake.requests",
        partition=1,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=b"",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=(),
    )


async def test_events_and_the_consumed_position_commit_together(notebooks: Notebooks) -> None:
    book = _notebook_with(1)
    tracking = tracking_of(_record(41))
    assert not notebooks.consumed(tracking)
    notebooks.save_tracked(book, tracking=tracking)
    assert notebooks.consumed(tracking)
    assert notebooks.consumed(tracking_of(_record(40)))
    assert not notebooks.consumed(tracking_of(_record(42)))
    assert notebooks.repository.get(book.id).lines == ["line 0"]


async def test_a_failed_save_records_no_tracking_either(notebooks: Notebooks) -> None:
    book = _notebook_with(1)
    notebooks.save(book)
    stale: Notebook = notebooks.repository.get(book.id)
    book.write("first writer")
    notebooks.save(book)
    stale.write("second writer")
    with pytest.raises(RecordConflictError):  # the store refuses the conflicting version…
        notebooks.save_tracked(stale, tracking=tracking_of(_record(7)))
    assert not notebooks.consumed(tracking_of(_record(7)))  # …and the message stays unconsumed
    assert isinstance(book.id, UUID)


async def test_followers_starting_together_share_one_position_table(
    notebooks: Notebooks, pool: asyncpg.Pool, kafka_settings: KafkaSettings
) -> None:
    notebooks.save(_notebook_with(1))
    async with EventProducer(kafka_settings, client_id="relay") as producer:
        # A service starts several followers at once; CREATE TABLE IF NOT EXISTS races there.
        for _ in range(5):
            async with pool.acquire() as conn:
                await conn.execute("DROP TABLE IF EXISTS flowcase_log_position")
            relays = [
                Relay(
                    name=f"r{i}",
                    application=notebooks,
                    to_envelopes=to_envelopes,
                    producer=producer,
                    pool=pool,
                )
                for i in range(4)
            ]
            # A failing follower cancels its siblings: left running, they would hold the pool's
            # connections and hang the fixture's teardown instead of reporting the failure.
            async with asyncio.TaskGroup() as group:
                batches = [group.create_task(r.process_next_batch()) for r in relays]
            assert [batch.result() for batch in batches] == [2] * 4


async def test_two_replicas_of_one_relay_never_publish_a_batch_twice(
    notebooks: Notebooks, pool: asyncpg.Pool, kafka_settings: KafkaSettings
) -> None:
    for _ in range(10):
        notebooks.save(_notebook_with(3))
    async with EventProducer(kafka_settings, client_id="relay") as producer:
        replicas = [
            Relay(
                name="notes",
                application=notebooks,
                to_envelopes=to_envelopes,
                producer=producer,
                pool=pool,
                batch_size=4,
            )
            for _ in range(2)
        ]
        tasks = [asyncio.create_task(r.run()) for r in replicas]
        published = await _published(kafka_settings, 30)
        for replica in replicas:
            replica.stop()
        await asyncio.gather(*tasks)
    ids = [e.event_id for e in published]
    assert len(ids) == 30
    assert len(set(ids)) == 30
