"""How the driver reaches the platform (adapters): intake's HTTP API or its raw topic, and the
workflow's approval API for the supervisor's decisions."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from flowcase.bench.stages import SubmissionTrace
from flowcase.events import Topic
from flowcase.events.settings import KafkaSettings

# Open loop: requests in flight pile up when the platform slows; a connection each keeps the
# client from queueing them itself (which would hide the platform's latency in the driver).
MAX_CONNECTIONS = 1024


class Submitter(Protocol):
    via: str

    async def start(self) -> None: ...

    async def submit(self, trace: SubmissionTrace) -> None:
        """Send one submission; note on the trace when it was sent and what came back."""

    async def stop(self) -> None: ...


class HttpSubmitter:
    """`POST /v1/requests` with an upstream client's token; accepted means 202 (Kafka acked)."""

    via = "http"

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=256)
        self._client = httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=120)

    async def start(self) -> None:
        return None

    async def submit(self, trace: SubmissionTrace) -> None:
        trace.sent_at = time.time()
        try:
            response = await self._client.post("/v1/requests", json=trace.planned.body)
        except httpx.HTTPError as exc:
            trace.refused = type(exc).__name__
            return
        if response.status_code == 202:
            trace.accepted_at = time.time()
            trace.request_id = response.json()["request_id"]
        else:
            trace.refused = str(response.status_code)

    async def stop(self) -> None:
        await self._client.aclose()


class RawSubmitter:
    """The submission's JSON on intake's raw topic, keyed by its submission id, as an upstream
    system publishes it; accepted means its `intake.RequestSubmitted` is on the requests topic."""

    via = "raw"

    def __init__(self, kafka: KafkaSettings) -> None:
        self._topic = kafka.topic(Topic.INTAKE_SUBMISSIONS)
        # Batches of up to 256 KiB (aiokafka's default is 16 KiB): a backlog published at once
        # fills them, and the broker takes a few large requests instead of many small ones.
        self._producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=256 * 1024,
            **kafka.client_options(),
        )

    async def start(self) -> None:
        await self._producer.start()

    async def submit(self, trace: SubmissionTrace) -> None:
        try:
            await (await self._send(trace))
        except Exception as exc:  # any failed send is a submission intake never saw
            trace.refused = type(exc).__name__

    async def submit_all(
        self, traces: list[SubmissionTrace], on_delivered: Callable[[], None]
    ) -> None:
        """Send every submission at once, returning when the broker has acknowledged them all.

        No send waits for another's acknowledgement: the producer packs them into its batches
        and only pauses a send while a partition's batch is full and on its way.
        """
        deliveries = []
        for trace in traces:
            try:
                delivery = await self._send(trace)
            except Exception as exc:  # not even queued: a submission intake never saw
                trace.refused = type(exc).__name__
                continue
            delivery.add_done_callback(functools.partial(_delivered, trace, on_delivered))
            deliveries.append(delivery)
        await asyncio.gather(*deliveries, return_exceptions=True)

    async def _send(self, trace: SubmissionTrace) -> asyncio.Future[RecordMetadata]:
        """Hand the submission to the producer; the future resolves when the broker has it."""
        trace.sent_at = time.time()
        return await self._producer.send(
            self._topic,
            json.dumps(trace.planned.body).encode(),
            key=trace.planned.submission_id.encode(),
        )

    async def stop(self) -> None:
        await self._producer.stop()


def _delivered(
    trace: SubmissionTrace,
    on_delivered: Callable[[], None],
    delivery: asyncio.Future[RecordMetadata],
) -> None:
    if delivery.cancelled():
        trace.refused = "CancelledError"
    elif (exc := delivery.exception()) is not None:
        trace.refused = type(exc).__name__
    on_delivered()


_APPROVAL_ATTEMPTS = 3


class Approver:
    """Approves every approval the workflow requests, at once, as a supervisor holding the role
    each approval asks for would (`headers` mints a caller's headers for a role)."""

    def __init__(self, url: str, headers: Callable[[str], dict[str, str]]) -> None:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(base_url=url, limits=limits, timeout=120)
        self._headers = functools.cache(headers)
        self.answers: Counter[str] = Counter()
        self._pending: set[asyncio.Task[None]] = set()

    def approve_soon(self, request_id: str, step: str, role: str) -> None:
        task = asyncio.create_task(self._approve(request_id, step, role))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _approve(self, request_id: str, step: str, role: str) -> None:
        for attempt in range(1, _APPROVAL_ATTEMPTS + 1):
            try:
                response = await self._client.post(
                    f"/v1/instances/{request_id}/approvals/{step}",
                    json={"decision": "approved", "rationale": "Within budget", "relied_on": []},
                    headers=self._headers(role),
                )
            except httpx.TransportError as exc:
                # A kept-alive connection the server closed as the request left (a ReadError
                # with no answer): sent again; had it been applied, the answer is a 409.
                if attempt == _APPROVAL_ATTEMPTS:
                    self.answers[type(exc).__name__] += 1
                continue
            except httpx.HTTPError as exc:
                self.answers[type(exc).__name__] += 1
                return
            self.answers[str(response.status_code)] += 1
            return

    async def stop(self) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=30)
        await self._client.aclose()
