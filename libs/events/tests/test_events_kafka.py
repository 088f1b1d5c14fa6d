"""The contract against the real broker and database."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import signal
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer import group_coordinator
from aiokafka.errors import GroupCoordinatorNotAvailableError, UnknownError
from opentelemetry import trace

from flowcase.devstack.faults import LIST_OFFSETS_API_KEY, KafkaFaultProxy
from flowcase.devstack.in_process import eventually
from flowcase.devstack.topic_reader import read_topic
from flowcase.events import TOPIC_SPECS, Envelope, Topic, decode, encode
from flowcase.events.catalogue.workflow import InstanceAdvanced, StepEntered, StepKind
from flowcase.events.inbox import Inbox
from flowcase.events.kafka import (
    ConsumerRunner,
    DeadLetterHeader,
    EventProducer,
    decoded,
    ensure_topics,
    partitions_of,
    seek_to_start,
)
from flowcase.events.kafka.admin import delete_topics
from flowcase.events.kafka.metrics import (
    CONSUMER_LAG,
    MESSAGES_DEADLETTERED,
    MESSAGES_PASSED_OVER,
    MESSAGES_PROCESSED,
)
from flowcase.events.settings import KafkaSettings

LOOKUP_FAILED = "Group Coordinator Request failed: %s"


async def _run_until(runner: ConsumerRunner, done: asyncio.Event, timeout: float = 60) -> None:
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)


async def test_every_event_type_round_trips_through_kafka(
    kafka_settings: KafkaSettings, example_envelopes: list[Envelope]
) -> None:
    async with EventProducer(kafka_settings, client_id="round-trip") as producer:
        await producer.publish_all(example_envelopes)
    received: dict[uuid.UUID, Envelope] = {}
    for topic in {producer.topic_for(e) for e in example_envelopes}:
        expected = sum(1 for e in example_envelopes if producer.topic_for(e) == topic)
        for record in await read_topic(kafka_settings, topic, count=expected):
            envelope = decode(record.value)
            assert record.key == envelope.key
            received[envelope.event_id] = envelope
    assert received == {e.event_id: e for e in example_envelopes}


async def test_idempotent_producer_stores_a_retried_send_once(
    kafka_fault_proxy: KafkaFaultProxy,
    kafka_settings: KafkaSettings,
    example_envelopes: list[Envelope],
) -> None:
    through_proxy = kafka_settings.model_copy(update={"bootstrap": kafka_fault_proxy.bootstrap})
    envelope = example_envelopes[0]
    async with EventProducer(through_proxy, client_id="idempotent") as producer:
        await _warm_up(producer, envelope)
        kafka_fault_proxy.drop_produce_responses(1)
        await producer.publish(envelope)
    assert kafka_fault_proxy.dropped == 1
    records = await read_topic(through_proxy, producer.topic_for(envelope), count=2)
    assert _event_ids(records) == [envelope.event_id]


async def _warm_up(producer: EventProducer, envelope: Envelope) -> None:
    """A first send on the envelope's partition, so the dropped response is a stored write.

    (On a brand-new topic the first Produce can fail with a not-leader error: dropping that
    response would hide nothing.)
    """
    await producer.send_raw(producer.topic_for(envelope), b"warm-up", key=envelope.key, headers=[])


def _event_ids(records: list) -> list[uuid.UUID]:
    return [decode(r.value).event_id for r in records if r.value != b"warm-up"]


async def test_without_idempotence_the_same_retry_duplicates(
    kafka_fault_proxy: KafkaFaultProxy,
    kafka_settings: KafkaSettings,
    example_envelopes: list[Envelope],
) -> None:
    """The control for the test above: it shows the fault really causes a retried send."""
    through_proxy = kafka_settings.model_copy(update={"bootstrap": kafka_fault_proxy.bootstrap})
    envelope = example_envelopes[0]
    async with EventProducer(
        through_proxy, client_id="plain", enable_idempotence=False
    ) as producer:
        await _warm_up(producer, envelope)
        kafka_fault_proxy.drop_produce_responses(1)
        await producer.publish(envelope)
    assert kafka_fault_proxy.dropped == 1
    records = await read_topic(through_proxy, producer.topic_for(envelope), count=3)
    assert _event_ids(records) == [envelope.event_id] * 2


async def test_trace_context_survives_the_hop(
    kafka_settings: KafkaSettings, example_envelopes: list[Envelope], spans
) -> None:
    envelope = example_envelopes[0]
    seen: list[trace.SpanContext] = []
    done = asyncio.Event()

    async def handle(received: Envelope, record: object) -> None:
        seen.append(trace.get_current_span().get_span_context())
        done.set()

    tracer = trace.get_tracer("test")
    async with EventProducer(kafka_settings, client_id="tracing") as producer:
        with tracer.start_as_current_span("upstream") as upstream:
            await producer.publish(envelope)
        runner = ConsumerRunner(
            kafka_settings,
            group_id=f"tracing-{uuid.uuid4().hex[:8]}",
            topics=[producer.topic_for(envelope)],
            handler=decoded(handle),
            deadletter=producer,
        )
        await _run_until(runner, done)
    assert seen[0].trace_id == upstream.get_span_context().trace_id
    finished = {s.name: s for s in spans.get_finished_spans()}
    send = finished[f"send {producer.topic_for(envelope)}"]
    process = finished[f"process {producer.topic_for(envelope)}"]
    assert send.parent.span_id == upstream.get_span_context().span_id
    assert process.parent.span_id == send.context.span_id
    assert process.attributes["messaging.system"] == "kafka"
    assert process.attributes["messaging.consumer.group.name"] == runner.group_id


def test_a_retried_coordinator_lookup_is_logged_as_a_warning_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every group meets GroupCoordinatorNotAvailableError on a broker just started; aiokafka
    retries it and logs it at ERROR, which read as a fault in every fresh intake.log."""
    caplog.set_level(logging.INFO, logger="aiokafka")
    logger = logging.getLogger("aiokafka.consumer.group_coordinator")
    # The line as aiokafka writes it (checked against its source, so an upgrade that rewords it
    # fails here rather than bringing the ERROR back unnoticed).
    assert LOOKUP_FAILED in inspect.getsource(group_coordinator)
    logger.error(LOOKUP_FAILED, GroupCoordinatorNotAvailableError())
    logger.error(LOOKUP_FAILED, UnknownError())  # not retriable: stays an error
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records] == [
        ("WARNING", "group coordinator not available yet, retrying"),
        ("ERROR", "Group Coordinator Request failed"),
    ]


async def test_undecodable_messages_go_to_the_dead_letter_topic_and_the_consumer_goes_on(
    kafka_settings: KafkaSettings, example_envelopes: list[Envelope]
) -> None:
    valid = example_envelopes[0]
    topic = kafka_settings.topic(Topic.WORKFLOW_EVENTS)
    body = json.loads(encode(valid))
    unknown = {**body, "event_type": "workflow.Teleported"}
    newer = {**body, "schema_version": 99}
    bad_payload = {**body, "payload": {**body["payload"], "extra": 1}}
    poison = [
        (b"{definitely not json", "malformed"),
        (json.dumps(unknown).encode(), "unknown-event-type"),
        (json.dumps(newer).encode(), "unsupported-schema-version"),
        (json.dumps(bad_payload).encode(), "malformed"),
    ]
    handled: list[Envelope] = []
    done = asyncio.Event()

    async def handle(envelope: Envelope, record: object) -> None:
        handled.append(envelope)
        done.set()

    async with EventProducer(kafka_settings, client_id="dlq") as producer:
        for value, _ in poison:
            # One key, one partition: the valid event comes after every poison message.
            await producer.send_raw(topic, value, key=b"k", headers=[])
        await producer.send_raw(topic, encode(valid), key=b"k", headers=[])
        runner = ConsumerRunner(
            kafka_settings,
            group_id=f"dlq-{uuid.uuid4().hex[:8]}",
            topics=[topic],
            handler=decoded(handle),
            deadletter=producer,
        )
        await _run_until(runner, done)

    assert [e.event_id for e in handled] == [valid.event_id]
    dead = await read_topic(
        kafka_settings, kafka_settings.topic(Topic.DEADLETTER), count=len(poison)
    )
    assert len(dead) == len(poison)
    for record, (value, reason) in zip(dead, poison, strict=True):
        headers = {k: v.decode() for k, v in record.headers}
        assert record.value == value
        assert headers[DeadLetterHeader.REASON] == reason
        assert headers[DeadLetterHeader.ORIGINAL_TOPIC] == topic
        assert headers[DeadLetterHeader.CONSUMER_GROUP] == runner.group_id
        assert int(headers[DeadLetterHeader.ORIGINAL_OFFSET]) >= 0
        assert headers[DeadLetterHeader.ERROR]


async def test_a_consumer_passes_over_the_event_types_it_does_not_handle_undecoded(
    kafka_settings: KafkaSettings, example_envelopes: list[Envelope]
) -> None:
    by_type = {e.event_type: e for e in example_envelopes}
    wanted, other = by_type["workflow.EscalatedToCase"], by_type["workflow.StepEntered"]
    topic = kafka_settings.topic(Topic.WORKFLOW_EVENTS)
    unlabelled = Envelope.wrap(other.payload, source="test", request_id=other.request_id)
    handled: list[str] = []
    done = asyncio.Event()

    async def handle(envelope: Envelope, record: object) -> None:
        handled.append(envelope.event_type)
        if envelope.event_id == wanted.event_id:
            done.set()

    group = f"passing-over-{uuid.uuid4().hex[:8]}"
    before = MESSAGES_PASSED_OVER.labels(topic, group)._value.get()
    async with EventProducer(kafka_settings, client_id="passing-over") as producer:
        # One key, one partition, in this order: labelled and not wanted, bytes no decoder
        # takes under a label not wanted (passed over, so not dead-lettered here), a record
        # without a label (decoded and handled as ever), then the one wanted.
        await producer.send_raw(
            topic,
            encode(other),
            key=b"k",
            headers=[("flowcase.event_type", b"workflow.StepEntered")],
        )
        await producer.send_raw(
            topic,
            b"{not json",
            key=b"k",
            headers=[("flowcase.event_type", b"workflow.StepEntered")],
        )
        await producer.send_raw(topic, encode(unlabelled), key=b"k", headers=[])
        # Groups of events, labelled with the types they carry: one without an escalation
        # (passed over), then one with it (decoded, each of its events handled).
        request_id = wanted.request_id
        assert request_id is not None
        step = Envelope.wrap(
            StepEntered(request_id=request_id, step="check", kind=StepKind.VALIDATE),
            source="test",
            request_id=request_id,
        )
        for carried in ([step, step], [step, wanted]):
            advanced = InstanceAdvanced(
                request_id=request_id, events=[e.model_dump(mode="json") for e in carried]
            )
            await producer.publish(Envelope.wrap(advanced, source="test", request_id=request_id))
        runner = ConsumerRunner(
            kafka_settings,
            group_id=group,
            topics=[topic],
            handler=decoded(handle),
            deadletter=producer,
            handles=["workflow.EscalatedToCase"],
        )
        await _run_until(runner, done)

    assert handled == ["workflow.StepEntered", "workflow.StepEntered", "workflow.EscalatedToCase"]
    assert MESSAGES_PASSED_OVER.labels(topic, group)._value.get() - before == 3
    assert MESSAGES_DEADLETTERED.labels(topic, group, "malformed")._value.get() == 0


async def test_a_batch_handler_takes_many_records_and_a_poison_one_falls_back_to_one_by_one(
    kafka_settings: KafkaSettings, example_envelopes: list[Envelope]
) -> None:
    topic = kafka_settings.topic(Topic.WORKFLOW_EVENTS)
    valid = [e for e in example_envelopes if e.topic is Topic.WORKFLOW_EVENTS][:3]
    batches: list[int] = []
    handled: list[uuid.UUID] = []

    async def handle_batch(records: list) -> None:
        envelopes = [decode(r.value) for r in records]  # the poison record fails the batch
        batches.append(len(envelopes))
        handled.extend(e.event_id for e in envelopes)

    async def handle(envelope: Envelope, record: object) -> None:
        handled.append(envelope.event_id)

    async with EventProducer(kafka_settings, client_id="batch") as producer:
        for envelope in valid:
            await producer.send_raw(topic, encode(envelope), key=b"one", headers=[])
        await producer.send_raw(topic, b"{poison", key=b"two", headers=[])
        for envelope in valid:
            await producer.send_raw(topic, encode(envelope), key=b"two", headers=[])
        runner = ConsumerRunner(
            kafka_settings,
            group_id=f"batch-{uuid.uuid4().hex[:8]}",
            topics=[topic],
            handler=decoded(handle),
            batch_handler=handle_batch,
            deadletter=producer,
        )
        task = asyncio.create_task(runner.run())
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while len(handled) < 2 * len(valid):
                assert asyncio.get_running_loop().time() < deadline, handled
                await asyncio.sleep(0.05)
        finally:
            runner.stop()
            await asyncio.wait_for(task, 30)

    assert sorted(handled) == sorted(e.event_id for e in valid * 2)
    assert batches == [len(valid)]  # keys one and two land on different partitions
    dead = await read_topic(kafka_settings, kafka_settings.topic(Topic.DEADLETTER), count=1)
    assert [r.value for r in dead] == [b"{poison"]


async def test_a_consumer_killed_before_commit_redelivers_and_the_inbox_makes_it_a_no_op(
    kafka_settings: KafkaSettings,
    database_url: str,
    example_envelopes: list[Envelope],
) -> None:
    envelope = example_envelopes[0]
    async with EventProducer(kafka_settings, client_id="crash") as producer:
        await producer.publish(envelope)
    topic = producer.topic_for(envelope)
    group = f"crash-{uuid.uuid4().hex[:8]}"
    script = Path(__file__).with_name("counting_consumer.py")
    args = [sys.executable, str(script), kafka_settings.bootstrap, topic, group, database_url]

    crashing = await asyncio.create_subprocess_exec(*args, "--crash")
    assert await asyncio.wait_for(crashing.wait(), 60) == -signal.SIGKILL

    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM deliveries") == 1
        assert await conn.fetchval("SELECT count(*) FROM effects") == 1

        second = await asyncio.create_subprocess_exec(*args)
        for _ in range(300):
            if await conn.fetchval("SELECT count(*) FROM deliveries") == 2:
                break
            await asyncio.sleep(0.2)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0

        first, again = await conn.fetch('SELECT topic, part, "offset" FROM deliveries ORDER BY at')
        assert first == again  # the same message was delivered twice…
        assert await conn.fetchval("SELECT count(*) FROM effects") == 1  # …and changed state once
    finally:
        await conn.close()

    consumer = AIOKafkaConsumer(group_id=group, **kafka_settings.client_options())
    await consumer.start()
    try:
        tp = TopicPartition(topic, again["part"])
        assert await consumer.committed(tp) == again["offset"] + 1  # the graceful stop committed
    finally:
        await consumer.stop()


async def test_consumer_metrics_count_messages_and_lag_returns_to_zero_after_a_burst(
    kafka_settings: KafkaSettings, example_envelopes: list[Envelope]
) -> None:
    envelope = example_envelopes[0]
    group = f"metrics-{uuid.uuid4().hex[:8]}"
    topic = kafka_settings.topic(Topic.WORKFLOW_EVENTS)
    burst = 50
    handled = 0
    done = asyncio.Event()

    async def handle(received: Envelope, record: object) -> None:
        nonlocal handled
        handled += 1
        if handled == burst:
            done.set()

    async with EventProducer(kafka_settings, client_id="metrics") as producer:
        for _ in range(burst):
            await producer.send_raw(topic, encode(envelope), key=envelope.key, headers=[])
        await producer.send_raw(topic, b"poison", key=envelope.key, headers=[])
        runner = ConsumerRunner(
            kafka_settings,
            group_id=group,
            topics=[topic],
            handler=decoded(handle),
            deadletter=producer,
        )
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(done.wait(), 60)
        for _ in range(50):  # the runner reports lag after each fetch
            lags = [
                s.value
                for metric in CONSUMER_LAG.collect()
                for s in metric.samples
                if s.labels["group"] == group
            ]
            if lags and all(v == 0 for v in lags):
                break
            await asyncio.sleep(0.1)
        runner.stop()
        await task
    assert lags
    assert all(v == 0 for v in lags)
    assert MESSAGES_PROCESSED.labels(topic, group)._value.get() == burst
    assert MESSAGES_DEADLETTERED.labels(topic, group, "malformed")._value.get() == 1


async def test_ensure_topics_reports_only_what_it_created_when_two_race(
    kafka_settings: KafkaSettings,
) -> None:
    racing = kafka_settings.model_copy(update={"topic_suffix": f".{uuid.uuid4().hex[:10]}"})
    try:
        first, second = await asyncio.gather(ensure_topics(racing), ensure_topics(racing))
        assert sorted(first + second) == sorted(racing.topic(spec.topic) for spec in TOPIC_SPECS)
        assert await ensure_topics(racing) == []
    finally:
        await delete_topics(racing)


async def test_a_read_from_the_start_is_not_moved_to_the_end_by_a_reset_still_in_flight(
    kafka_fault_proxy: KafkaFaultProxy, kafka_settings: KafkaSettings
) -> None:
    """A freshly assigned partition resets to `latest` in the background; on a loaded machine
    that request is still in flight when the reader seeks to the start, and its late answer
    must not win (it did with aiokafka's `seek_to_beginning`: every read-back came back empty)."""
    topic = kafka_settings.topic(Topic.CASE_EVENTS)
    async with EventProducer(kafka_settings, client_id="seek-race") as producer:
        for n in range(3):
            await producer.send_raw(topic, b"record %d" % n, key=b"k", headers=[])
    through_proxy = kafka_settings.model_copy(update={"bootstrap": kafka_fault_proxy.bootstrap})
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **through_proxy.client_options())
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        kafka_fault_proxy.hold_responses(LIST_OFFSETS_API_KEY)
        consumer.assign(tps)  # its own reset to `latest` goes out now, and is held
        await eventually(lambda: _now(kafka_fault_proxy.held), lambda held: held >= 1)
        seeking = asyncio.create_task(seek_to_start(consumer, tps))
        for _ in range(10):  # let the seek send what it sends before the answers come
            await asyncio.sleep(0)
        kafka_fault_proxy.release_responses()
        await asyncio.wait_for(seeking, 30)
        records: list[bytes] = []
        await eventually(
            lambda: _read_more(consumer, records), lambda read: len(read) >= 3, timeout=30
        )
        assert records == [b"record 0", b"record 1", b"record 2"]
    finally:
        await consumer.stop()


async def _now(value: int) -> int:
    return value


async def _read_more(consumer: AIOKafkaConsumer, records: list[bytes]) -> list[bytes]:
    batch = await consumer.getmany(timeout_ms=200)
    records.extend(r.value for rs in batch.values() for r in rs)
    return records


async def test_the_inbox_claims_a_batch_in_one_statement_and_each_id_once(
    database_url: str,
) -> None:
    inbox = Inbox(f"batch-{uuid.uuid4().hex[:8]}")
    conn = await asyncpg.connect(database_url)
    try:
        await inbox.create_table(conn)
        with pytest.raises(RuntimeError, match="inside the transaction"):
            await inbox.claim_all(conn, ["a"])
        async with conn.transaction():
            assert await inbox.claim_all(conn, ["a", "b"]) == {"a", "b"}
        async with conn.transaction():
            assert await inbox.claim(conn, "c")
            assert await inbox.claim_all(conn, ["b", "c", "d"]) == {"d"}  # a redelivered batch
        async with conn.transaction():
            assert await inbox.claim_all(conn, []) == set()
    finally:
        await conn.close()
