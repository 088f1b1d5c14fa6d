"""The raw ceilings on the same broker and database as the platform (adapters).

- Kafka: the very `intake.RequestSubmitted` envelopes the platform carries, produced as a good
  aiokafka user would (acks=all, idempotent, linger and batching, sends not awaited one by one)
  and consumed by a plain consumer: first as fast as it goes (throughput), then paced open-loop
  at a given rate (per-message latency from the due time to the consumer's hand).
- PostgreSQL: rows shaped like the workflow's stored events (the workflow's own rows, copied
  after the warm-up, under fresh ids) appended to a table of the event store's shape, from a
  few connections at once: one row per transaction, then a batch per transaction.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from flowcase.bench.histograms import LatencyHistogram
from flowcase.bench.mix import PlannedSubmission
from flowcase.bench.schedule import RateStep
from flowcase.bench.scratch import scratch_database, scratch_topics
from flowcase.events import Envelope, Topic, encode
from flowcase.events.catalogue.intake import RequestSubmitted

# --- Kafka --------------------------------------------------------------------------------------


def request_submitted_records(planned: list[PlannedSubmission]) -> list[tuple[bytes, bytes]]:
    """(key, value) of the `intake.RequestSubmitted` intake would publish for each submission."""
    records = []
    for submission in planned:
        request_id = uuid.uuid4()
        body = submission.body
        envelope = Envelope.wrap(
            RequestSubmitted(
                request_id=request_id,
                submission_id=submission.submission_id,
                request_type=body["request_type"],
                requester=body["requester"],
                priority=body["priority"],
                submitted_at=datetime.now(UTC),
                channel="http",
                payload=body["payload"],
            ),
            source="intake",
            request_id=request_id,
        )
        records.append((envelope.key, encode(envelope)))
    return records


class _Receiver:
    """Consumes the baseline topic and notes when each key arrived, until `expected` did."""

    def __init__(self, consumer: AIOKafkaConsumer, expected: int | None = None) -> None:
        self.consumer = consumer
        self.expected = expected  # None while the producer is still sending
        self.arrived: dict[bytes, float] = {}
        self.created: dict[bytes, float] = {}

    async def read(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (self.expected is None or len(self.arrived) < self.expected) and (
            time.monotonic() < deadline
        ):
            batches = await self.consumer.getmany(timeout_ms=100, max_records=10_000)
            now = time.time()
            for records in batches.values():
                for record in records:
                    if record.key is not None:
                        self.arrived[record.key] = now
                        self.created[record.key] = record.timestamp / 1000


async def kafka_baseline(
    bootstrap: str, records: list[tuple[bytes, bytes]], seconds: float, paced_rate: float
) -> dict[str, Any]:
    kafka = await scratch_topics(bootstrap)
    topic = kafka.topic(Topic.INTAKE_REQUESTS)
    producer = AIOKafkaProducer(
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
        **kafka.client_options(),
    )
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, max_partition_fetch_bytes=4 * 2**20, **kafka.client_options()
    )
    await producer.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        throughput = await _as_fast_as_it_goes(producer, consumer, topic, records, seconds)
        paced = await _paced(producer, consumer, topic, records, RateStep(paced_rate, seconds))
    finally:
        await producer.stop()
        await consumer.stop()
    return {
        "topic_partitions": len(partitions),
        "message_bytes_mean": round(sum(len(v) for _, v in records) / len(records), 1),
        "producer": {"acks": "all", "idempotent": True, "linger_ms": 5, "batch_bytes": 262144},
        "throughput": throughput,
        "paced": paced,
    }


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    found = consumer.partitions_for_topic(topic)
    while not found:  # a fresh client knows no topic until it asks
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
    return set(found)


def _keyed(records: list[tuple[bytes, bytes]], run: str) -> Iterator[tuple[bytes, bytes]]:
    """The records again and again, each send under a key of its own (to match it on arrival)."""
    for n, (_, value) in enumerate(itertools.cycle(records)):
        yield f"{run}-{n}".encode(), value


async def _as_fast_as_it_goes(
    producer: AIOKafkaProducer,
    consumer: AIOKafkaConsumer,
    topic: str,
    records: list[tuple[bytes, bytes]],
    seconds: float,
) -> dict[str, Any]:
    receiver = _Receiver(consumer)
    reading = asyncio.create_task(receiver.read(timeout=seconds * 10 + 60))
    started = time.time()
    deadline = time.monotonic() + seconds
    in_flight = []
    sent = 0
    for key, value in _keyed(records, "burst"):
        if time.monotonic() >= deadline:
            break
        # send() only waits when the producer's buffer is full: this is its own batching.
        in_flight.append(await producer.send(topic, value, key=key))
        sent += 1
        if len(in_flight) >= 5000:
            await asyncio.gather(*in_flight)
            in_flight.clear()
    await asyncio.gather(*in_flight)
    produced = time.time()
    receiver.expected = sent
    await reading
    last = max(receiver.arrived.values(), default=started)
    latency = LatencyHistogram.of_seconds(
        receiver.arrived[k] - receiver.created[k] for k in receiver.arrived
    )
    return {
        "messages": sent,
        "consumed": len(receiver.arrived),
        "produce_seconds": round(produced - started, 3),
        "messages_per_second": round(len(receiver.arrived) / (last - started), 1),
        "produce_to_consume_ms": latency.summary(),
    }


async def _paced(
    producer: AIOKafkaProducer,
    consumer: AIOKafkaConsumer,
    topic: str,
    records: list[tuple[bytes, bytes]],
    step: RateStep,
) -> dict[str, Any]:
    receiver = _Receiver(consumer, expected=step.count)
    reading = asyncio.create_task(receiver.read(timeout=step.seconds + 60))
    start = time.time() + 0.05
    due: dict[bytes, float] = {}
    sends = []
    for index, (key, value) in zip(range(step.count), _keyed(records, "paced"), strict=False):
        due[key] = start + step.offset(index)
        await asyncio.sleep(max(0.0, due[key] - time.time()))
        sends.append(await producer.send(topic, value, key=key))
    await asyncio.gather(*sends)
    await reading
    latency = LatencyHistogram.of_seconds(receiver.arrived[k] - due[k] for k in receiver.arrived)
    return {
        "rate": step.rate,
        "messages": step.count,
        "consumed": len(receiver.arrived),
        "due_to_consumed_ms": latency.summary(),
    }


# --- PostgreSQL ---------------------------------------------------------------------------------

_EVENTS_TABLE = """
CREATE TABLE bench_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text NOT NULL,
    state bytea NOT NULL,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX bench_events_notification_id ON bench_events (notification_id);
"""
_INSERT = (
    "INSERT INTO bench_events (originator_id, originator_version, topic, state) "
    "VALUES ($1, $2, $3, $4)"
)


async def workflow_event_rows(workflow_database_url: str) -> tuple[list[tuple[str, bytes]], float]:
    """The workflow's stored events so far as (topic, state), and events per instance."""
    conn = await asyncpg.connect(workflow_database_url)
    try:
        table = await conn.fetchval(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name = 'originator_version' AND table_name LIKE '%\\_events' "
            "ORDER BY table_name LIMIT 1"
        )
        if table is None:
            raise RuntimeError("the workflow database holds no event store table")
        rows = await conn.fetch(
            f'SELECT originator_id, topic, state FROM "{table}" ORDER BY notification_id'
        )
    finally:
        await conn.close()
    instances = len({row["originator_id"] for row in rows})
    if not instances:
        raise RuntimeError("the workflow stored no events during the warm-up")
    return [(row["topic"], bytes(row["state"])) for row in rows], len(rows) / instances


async def postgres_baseline(
    admin_url: str,
    rows: list[tuple[str, bytes]],
    events_per_request: float,
    *,
    seconds: float,
    writers: int,
    batch: int,
) -> dict[str, Any]:
    async with scratch_database(admin_url, "bench_baseline") as url:
        setup = await asyncpg.connect(url)
        try:
            await setup.execute(_EVENTS_TABLE)
        finally:
            await setup.close()
        single = await _appending(url, rows, seconds=seconds, writers=writers, batch=1)
        batched = await _appending(url, rows, seconds=seconds, writers=writers, batch=batch)
    return {
        "writers": writers,
        "row_bytes_mean": round(sum(len(t) + len(s) for t, s in rows) / len(rows), 1),
        "events_per_request": round(events_per_request, 2),
        "one_row_per_transaction": single,
        "batched": batched | {"rows_per_transaction": batch},
    }


async def _appending(
    url: str, rows: list[tuple[str, bytes]], *, seconds: float, writers: int, batch: int
) -> dict[str, Any]:
    commits = LatencyHistogram()
    deadline = time.monotonic() + seconds

    async def writer() -> int:
        conn = await asyncpg.connect(url)
        appended = 0
        source = itertools.cycle(rows)
        try:
            while time.monotonic() < deadline:
                originator = uuid.uuid4()
                chunk = [(originator, version, *next(source)) for version in range(1, batch + 1)]
                started = time.perf_counter()
                if batch == 1:
                    await conn.execute(_INSERT, *chunk[0])
                else:
                    async with conn.transaction():
                        await conn.executemany(_INSERT, chunk)
                commits.record_seconds(time.perf_counter() - started)
                appended += batch
        finally:
            await conn.close()
        return appended

    started = time.monotonic()
    appended = sum(await asyncio.gather(*(writer() for _ in range(writers))))
    elapsed = time.monotonic() - started
    return {
        "rows": appended,
        "rows_per_second": round(appended / elapsed, 1),
        "transactions_per_second": round(appended / batch / elapsed, 1),
        "transaction_ms": commits.summary(),
    }
