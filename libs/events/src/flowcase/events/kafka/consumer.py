"""The consumer runner: a consumer-group member that never crashes and never drops a message.

Offsets are committed only after the handler succeeded (at-least-once), so handlers must be
idempotent (see `flowcase.events.inbox`). A message the handler cannot use goes to
`flowcase.deadletter` byte for byte, with where it came from and why in headers; the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError, KafkaError
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_not_exception_type,
    stop_when_event_set,
)

from flowcase.events.codec import EventDecodeError, decode, expand
from flowcase.events.envelope import Envelope
from flowcase.events.kafka.metrics import (
    CONSUMER_LAG,
    MESSAGES_DEADLETTERED,
    MESSAGES_PASSED_OVER,
    MESSAGES_PROCESSED,
)
from flowcase.events.kafka.producer import CARRIED_TYPES_HEADER, EVENT_TYPE_HEADER, EventProducer
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.events.tracing import extract_trace_context, request_scope

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("flowcase.events")

QUIET_AFTER_SECONDS = 1.0
"""A consumer that has fetched nothing for this long long-polls (`ConsumerRunner._fetch_as`)."""
QUIET_FETCH_WAIT_MS = 500
"""How long a quiet consumer's fetch waits at the broker for its first byte."""

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Handler = Callable[[Record], Awaitable[None]]
BatchHandler = Callable[[list[Record]], Awaitable[None]]


class PoisonMessage(Exception):
    """Raised by a handler for a message that can never succeed; it is dead-lettered at once."""

    reason = "poison"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if reason:
            self.reason = reason


class DeadLetterHeader(StrEnum):
    REASON = "flowcase.dlq.reason"
    ERROR = "flowcase.dlq.error"
    ORIGINAL_TOPIC = "flowcase.dlq.original_topic"
    ORIGINAL_PARTITION = "flowcase.dlq.original_partition"
    ORIGINAL_OFFSET = "flowcase.dlq.original_offset"
    CONSUMER_GROUP = "flowcase.dlq.consumer_group"
    FAILED_AT = "flowcase.dlq.failed_at"


def is_transient(exc: BaseException) -> bool:
    """Failures of the infrastructure, not of the message: retried for as long as they last."""
    return isinstance(
        exc,
        OSError
        | TimeoutError
        | KafkaConnectionError
        | asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError,
    ) or (isinstance(exc, KafkaError) and exc.retriable)


class _RetriedCoordinatorLookup(logging.Filter):
    """aiokafka logs a failed lookup of a group's coordinator as an ERROR even when it retries
    it, as it does the `GroupCoordinatorNotAvailableError` every group meets on a broker just
    started (the offsets topic is still being made): such a record becomes the WARNING it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if (
            record.msg == "Group Coordinator Request failed: %s"
            and isinstance(error, KafkaError)
            and error.retriable
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "group coordinator not available yet, retrying: %s"
        return True


logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(_RetriedCoordinatorLookup())


def decoded(handler: Callable[[Envelope, Record], Awaitable[None]]) -> Handler:
    """Adapt a handler of envelopes, called for each event the message carries; an undecodable
    message raises and is dead-lettered."""

    async def handle(record: Record) -> None:
        for envelope in expand(decode(record.value or b"")):
            with request_scope(envelope.request_id):
                await handler(envelope, record)

    return handle


def _messaging_attributes(record: Record, group_id: str) -> dict[str, str | int]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.consumer.group.name": group_id,
    }


def message_span(record: Record, group_id: str) -> trace.Span:
    """The `process` span of one message, a child of the context it was produced under (started,
    not current: the caller ends it). A batch handler that stores each message's effects under
    that message's own span keeps every request's trace whole inside a shared transaction."""
    return _tracer.start_span(
        f"process {record.topic}",
        context=extract_trace_context(record.headers),
        kind=SpanKind.CONSUMER,
        attributes={
            **_messaging_attributes(record, group_id),
            "messaging.kafka.offset": record.offset,
            **(
                {"messaging.kafka.message.key": record.key.decode("utf-8", "replace")}
                if record.key
                else {}
            ),
        },
    )


class _CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._runner._commit(set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        pass


class ConsumerRunner:
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        group_id: str,
        topics: Iterable[str],
        handler: Handler,
        deadletter: EventProducer,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 30.0,
        batch_size: int = 500,
        transient: Callable[[BaseException], bool] = is_transient,
        batch_handler: BatchHandler | None = None,
        handles: Collection[str] | None = None,
        **consumer_options: Any,
    ) -> None:
        """`batch_handler`, when given, takes each partition's fetched records at once (one
        transaction for many messages). Transient failures retry the batch; any other failure
        falls back to `handler` record by record, which isolates and dead-letters the culprit,
        so both must be idempotent over the same records.

        `handles`, when given, names the only event types the handlers want: a record whose
        event-type header (`flowcase.event_type`, set by every Flowcase producer) names another
        is passed over without being decoded, handled or traced. A record without the header is
        decoded and handled as any other, so nothing unlabelled escapes the dead-letter rules.
        """
        self.group_id = group_id
        self.topics = list(topics)
        self._handler = handler
        self._batch_handler = batch_handler
        self._deadletter = deadletter
        self._deadletter_topic = settings.topic(Topic.DEADLETTER)
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._batch_size = batch_size
        self._transient = transient
        self._handles = None if handles is None else frozenset(h.encode() for h in handles)
        # The client is made in run(): a runner that never runs holds no connection.
        self._consumer_options = {
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "client_id": group_id,
            "fetch_min_bytes": settings.fetch_min_bytes,
            "fetch_max_wait_ms": settings.fetch_max_wait_ms,
            **settings.client_options(),
            **consumer_options,
        }
        self._consumer: AIOKafkaConsumer
        self._busy_fetch = (settings.fetch_min_bytes, settings.fetch_max_wait_ms)
        self._fetching_busy = True
        self._stopping = asyncio.Event()
        # Offsets processed but not yet committed, and the next offset to process (for lag).
        self._processed: dict[TopicPartition, int] = {}
        self._positions: dict[TopicPartition, int] = {}
        self.started = asyncio.Event()

    def stop(self) -> None:
        """Ask the loop to finish the message in hand, commit and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        self._consumer = AIOKafkaConsumer(**self._consumer_options)
        await self._consumer.start()
        self._consumer.subscribe(self.topics, listener=_CommitOnRevoke(self))
        self.started.set()
        quiet_since = time.monotonic()
        try:
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(timeout_ms=200, max_records=self._batch_size)
                if batches:
                    quiet_since = time.monotonic()
                    self._fetch_as(busy=True)
                elif time.monotonic() - quiet_since > QUIET_AFTER_SECONDS:
                    self._fetch_as(busy=False)
                for tp, fetched in batches.items():
                    if self._stopping.is_set():
                        break
                    records = self._wanted(fetched)
                    if not records:
                        self._processed[tp] = self._positions[tp] = fetched[-1].offset + 1
                        continue
                    if await self._process_batch(records):
                        self._processed[tp] = self._positions[tp] = fetched[-1].offset + 1
                        MESSAGES_PROCESSED.labels(tp.topic, self.group_id).inc(len(records))
                        continue
                    for record in records:
                        if self._stopping.is_set():
                            break
                        await self._process(record)
                        self._processed[tp] = self._positions[tp] = record.offset + 1
                    else:
                        # Passed-over records after the last handled one are done with too.
                        self._processed[tp] = self._positions[tp] = fetched[-1].offset + 1
                await self._commit()
                await self._report_lag()
        finally:
            try:
                await self._commit()
            finally:
                await self._consumer.stop()

    def _fetch_as(self, *, busy: bool) -> None:
        """Busy, fetch as configured (`fetch_min_bytes` gathered for up to `fetch_max_wait_ms`:
        fewer, fuller fetches); quiet, long-poll (the broker answers with the first byte, or
        after `QUIET_FETCH_WAIT_MS`), so an idle consumer asks twice a second instead of
        fifty times, and the first record after a lull is not held back at all.

        aiokafka reads both figures from its fetcher for every fetch request it builds and has
        no public way to change them after start; without that fetcher it fetches as
        configured throughout."""
        if busy == self._fetching_busy:
            return
        fetcher = getattr(self._consumer, "_fetcher", None)
        if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
            return
        self._fetching_busy = busy
        min_bytes, max_wait_ms = self._busy_fetch if busy else (1, QUIET_FETCH_WAIT_MS)
        fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = min_bytes, max_wait_ms

    def _wanted(self, records: list[Record]) -> list[Record]:
        if self._handles is None:
            return records
        wanted = [r for r in records if _wanted_by(r, self._handles)]
        if passed_over := len(records) - len(wanted):
            MESSAGES_PASSED_OVER.labels(records[0].topic, self.group_id).inc(passed_over)
        return wanted

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        offsets = {
            tp: offset for tp, offset in self._processed.items() if only is None or tp in only
        }
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            # The partitions moved to another member mid-batch; it will redeliver from the last
            # commit and idempotent handlers make that harmless.
            log.warning(
                "commit failed after a rebalance; %d partitions will redeliver", len(offsets)
            )
        for tp in offsets:
            if self._processed.get(tp) == offsets[tp]:
                del self._processed[tp]

    async def _report_lag(self) -> None:
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue  # nothing fetched from this partition yet
            position = self._positions.get(tp)
            if position is None:
                try:
                    position = await asyncio.wait_for(self._consumer.position(tp), 0.5)
                except (TimeoutError, KafkaError):
                    continue
            CONSUMER_LAG.labels(tp.topic, str(tp.partition), self.group_id).set(
                max(highwater - position, 0)
            )

    async def _process_batch(self, records: list[Record]) -> bool:
        """True when the batch handler took every record; False to go record by record."""
        if self._batch_handler is None:
            return False
        with self._batch_span(records):
            return await self._retry_batch(self._batch_handler, records)

    def _batch_span(self, records: list[Record]) -> AbstractContextManager[trace.Span]:
        """One `process` span per batch, linked to every message's context (the messaging
        conventions for batches). When the whole batch belongs to one trace, the span is also
        a child of the first message's context, so the trace of one request stays whole."""
        first = records[0]
        contexts = [extract_trace_context(r.headers) for r in records]
        links = [
            Link(span_context)
            for context in contexts
            if (span_context := trace.get_current_span(context).get_span_context()).is_valid
        ]
        one_trace = (
            len(links) == len(records) and len({link.context.trace_id for link in links}) == 1
        )
        return _tracer.start_as_current_span(
            f"process {first.topic}",
            context=contexts[0] if one_trace else Context(),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                **_messaging_attributes(first, self.group_id),
                "messaging.batch.message_count": len(records),
            },
        )

    async def _retry_batch(self, batch_handler: BatchHandler, records: list[Record]) -> bool:
        """True when the batch was handled; False when it failed for good (then the records go
        one by one) or the runner is stopping while transient failures persist."""
        if self._stopping.is_set():
            return False
        retrying = AsyncRetrying(
            retry=retry_if_exception(self._transient),
            wait=self._transient_wait,
            stop=stop_when_event_set(self._stopping),  # type: ignore[arg-type]
            before_sleep=_log_retry("transient failure, retrying the batch"),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await batch_handler(records)
        except Exception as exc:
            if not self._transient(exc):
                log.warning("batch of %d failed, going record by record: %r", len(records), exc)
            return False
        return True

    async def _process(self, record: Record) -> None:
        # A transient failure (a dependency away) is retried for as long as it lasts; any other
        # gets `max_attempts`, then the record is dead-lettered; a record no handler can use at
        # all (undecodable, poison) is dead-lettered at once.
        retrying = AsyncRetrying(
            retry=retry_if_not_exception_type((EventDecodeError, PoisonMessage)),
            wait=self._handler_wait,
            stop=self._handler_gives_up,
            before_sleep=self._log_handler_retry,
            reraise=True,
        )
        with trace.use_span(message_span(record, self.group_id), end_on_exit=True) as span:
            try:
                async for attempt in retrying:
                    with attempt:
                        await self._handler(record)
            except (EventDecodeError, PoisonMessage) as exc:
                await self._dead_letter(record, exc.reason, exc.detail)
                span.set_attribute("flowcase.deadlettered", True)
                return
            except Exception as exc:
                log.exception("handler failed %d times; dead-lettering", self._max_attempts)
                await self._dead_letter(record, "handler-failed", repr(exc))
                span.record_exception(exc)
                span.set_attribute("flowcase.deadlettered", True)
                return
            MESSAGES_PROCESSED.labels(record.topic, self.group_id).inc()

    def _transient_wait(self, state: RetryCallState) -> float:
        return min(self._backoff * 2 ** min(state.attempt_number, 16), self._max_backoff)

    def _handler_wait(self, state: RetryCallState) -> float:
        if self._failed_transiently(state):
            return self._transient_wait(state)
        return float(self._backoff * 2 ** (state.attempt_number - 1))

    def _handler_gives_up(self, state: RetryCallState) -> bool:
        return not self._failed_transiently(state) and state.attempt_number >= self._max_attempts

    def _log_handler_retry(self, state: RetryCallState) -> None:
        if self._failed_transiently(state):
            _log_retry("transient failure, retrying")(state)
        else:
            _log_retry(f"handler failed (attempt {state.attempt_number}), retrying")(state)

    def _failed_transiently(self, state: RetryCallState) -> bool:
        failure = state.outcome.exception() if state.outcome is not None else None
        return failure is not None and self._transient(failure)

    async def _dead_letter(self, record: Record, reason: str, detail: str) -> None:
        headers = [
            *(record.headers or ()),
            *dead_letter_headers(
                reason,
                detail,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                group=self.group_id,
            ),
        ]
        # Until the record is safely dead-lettered its offset is not committed: the message is
        # never dropped, and the runner waits rather than crash.
        async for attempt in AsyncRetrying(
            wait=self._transient_wait,
            before_sleep=_log_retry("dead-lettering failed, retrying", logging.ERROR),
        ):
            with attempt:
                await self._deadletter.send_raw(
                    self._deadletter_topic, record.value, key=record.key, headers=headers
                )
        MESSAGES_DEADLETTERED.labels(record.topic, self.group_id, reason).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason
        )


def _log_retry(what: str, level: int = logging.WARNING) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.log(level, "%s in %.1fs: %r", what, delay, failure)

    return before_sleep


def dead_letter_headers(
    reason: str, detail: str, *, topic: str, partition: int, offset: int, group: str
) -> list[tuple[str, bytes]]:
    """The headers every dead letter carries: why, and where it was when it failed."""
    return [
        (name.value, value)
        for name, value in (
            (DeadLetterHeader.REASON, reason.encode()),
            (DeadLetterHeader.ERROR, detail[:4000].encode("utf-8", "replace")),
            (DeadLetterHeader.ORIGINAL_TOPIC, topic.encode()),
            (DeadLetterHeader.ORIGINAL_PARTITION, str(partition).encode()),
            (DeadLetterHeader.ORIGINAL_OFFSET, str(offset).encode()),
            (DeadLetterHeader.CONSUMER_GROUP, group.encode()),
            (DeadLetterHeader.FAILED_AT, datetime.now(UTC).isoformat().encode()),
        )
    ]


def _wanted_by(record: Record, handles: frozenset[bytes]) -> bool:
    """Whether the record is of a type in `handles` or carries one; a record that does not say
    what it is (no type header) is decoded to find out."""
    typed = False
    for name, value in record.headers or ():
        if name == EVENT_TYPE_HEADER:
            if value in handles:
                return True
            typed = True
        elif name == CARRIED_TYPES_HEADER and not handles.isdisjoint(value.split(b",")):
            return True
    return not typed


def stop_on_signals(*stoppables: Callable[[], None]) -> None:
    """Call each stop function on SIGTERM or SIGINT (graceful shutdown)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: [stop() for stop in stoppables])
