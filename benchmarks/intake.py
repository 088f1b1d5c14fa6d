"""Intake throughput and latency on the real stack, next to the raw aiokafka produce rate.

    uv run python benchmarks/intake.py --seconds 10 [--concurrency 16]

Starts intake in this process (against the broker and PostgreSQL the test fixtures use: the
FLOWCASE_* environment, else the local stack), on its own topics and a fresh database, and
measures in one run:

1. aiokafka: an AIOKafkaProducer (acks=all, idempotent) sending the very events intake publishes
   (`intake.RequestSubmitted` envelopes) from `--concurrency` tasks, each awaiting its ack;
2. HTTP: `--concurrency` httpx clients in a separate process POSTing submissions; an answer
   counts when it is a 202 (Kafka acknowledged the event);
3. raw topic: a backlog of raw submissions drained by intake's consumer (throughput), then
   submissions offered at half that rate (latency from the raw record to the published request).

The figure to report is each rate's ratio to the aiokafka rate. Results go to
benchmarks/results/intake-<date>.json. Nothing here is asserted: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import multiprocessing
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tokens import AUTH, bearer

from flowcase.bench.histograms import LatencyHistogram
from flowcase.bench.scratch import free_port, run_on_shared_stack, scratch_database, scratch_topics
from flowcase.devstack.endpoints import Endpoints
from flowcase.events.catalogue.intake import RequestSubmitted
from flowcase.events.catalogue.workflow import DefinitionPublished
from flowcase.events.codec import encode
from flowcase.events.envelope import Envelope
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.events.topics import Topic
from flowcase.intake.composition import build_service
from flowcase.intake.identity import request_id_for_submission
from flowcase.intake.settings import IntakeSettings
from flowcase.intake.submissions_consumer import SubmissionsConsumer
from flowcase.runtime import HttpSettings
from flowcase.runtime.auth import Role

SCHEMA = {
    "type": "object",
    "required": ["invoice_id", "amount"],
    "properties": {
        "invoice_id": {"type": "string", "minLength": 1},
        "amount": {"type": "number", "exclusiveMinimum": 0},
        "vendor": {"type": "string"},
    },
}


def submission(n: int) -> dict[str, Any]:
    return {
        "request_type": "invoice_approval",
        "requester": f"ap-clerk-{n % 50}",
        "priority": "normal",
        "payload": {"invoice_id": f"INV-{n}", "amount": 100.0 + n % 1000, "vendor": "Acme"},
    }


def latency_ms(latencies: list[float]) -> dict[str, Any]:
    return {"latency_ms": LatencyHistogram.of_seconds(latencies).summary()}


# --- 1. the raw aiokafka produce rate ---------------------------------------------------------


async def aiokafka_rate(settings: KafkaSettings, seconds: float, concurrency: int) -> dict:
    producer = AIOKafkaProducer(
        acks="all", enable_idempotence=True, linger_ms=5, **settings.client_options()
    )
    await producer.start()
    topic = settings.topic(Topic.INTAKE_REQUESTS)
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def sender(worker: int) -> None:
        n = worker
        while time.monotonic() < deadline:
            request_id = uuid.uuid4()
            body = submission(n)
            value = encode(
                Envelope.wrap(
                    RequestSubmitted(
                        request_id=request_id,
                        submitted_at=datetime.now(UTC),
                        channel="http",
                        **body,
                    ),
                    source="benchmark",
                    request_id=request_id,
                )
            )
            started = time.monotonic()
            await producer.send_and_wait(topic, value, key=str(request_id).encode())
            latencies.append(time.monotonic() - started)
            n += concurrency

    try:
        started = time.monotonic()
        await asyncio.gather(*(sender(w) for w in range(concurrency)))
        elapsed = time.monotonic() - started
    finally:
        await producer.stop()
    return {
        "sent": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        **latency_ms(latencies),
    }


# --- 2. HTTP, from a separate process ---------------------------------------------------------


def http_load(url: str, seconds: float, concurrency: int, headers: dict[str, str]) -> dict:
    """Runs in a child process, so the clients do not share the service's core."""
    return asyncio.run(_http_load(url, seconds, concurrency, headers))


async def _http_load(url: str, seconds: float, concurrency: int, headers: dict[str, str]) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=30, headers=headers
    ) as client:

        async def worker(first: int) -> None:
            n = first
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = await client.post("/v1/requests", json=submission(n))
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 202:
                    latencies.append(time.monotonic() - started)
                n += concurrency

        started = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.monotonic() - started
    return {
        "accepted": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        **latency_ms(latencies),
    }


# --- 3. the raw topic ---------------------------------------------------------------------------


class RequestCounter:
    """Counts the requests intake publishes from now on, keeping each one's record timestamp."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self.timestamps: dict[bytes, int] = {}
        self._target = 0
        self._reached = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        topic = self._settings.topic(Topic.INTAKE_REQUESTS)
        self._consumer = AIOKafkaConsumer(
            enable_auto_commit=False, **self._settings.client_options()
        )
        await self._consumer.start()
        await self._consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in self._consumer.partitions_for_topic(topic)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            for records in (await self._consumer.getmany(timeout_ms=100)).values():
                for record in records:
                    self.timestamps[record.key or b""] = record.timestamp
            if len(self.timestamps) >= self._target:
                self._reached.set()

    async def wait_for(self, count: int, timeout: float) -> float:
        """The time the count was reached (or the timeout ran out)."""
        self._target = count
        self._reached.clear()
        if len(self.timestamps) < count:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reached.wait(), timeout)
        return time.monotonic()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self._consumer:
            await self._consumer.stop()


async def raw_topic(settings: KafkaSettings, consumer: SubmissionsConsumer, seconds: float) -> dict:
    """Drain a backlog for the throughput; then offer half that rate for the latency."""
    topic = settings.topic(Topic.INTAKE_SUBMISSIONS)
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **settings.client_options())
    await producer.start()
    counter = RequestCounter(settings)
    await counter.start()
    try:
        # The backlog: a few seconds of draining at the rates seen on a 2-core machine.
        backlog = max(500, int(seconds * 1000))
        sends = [
            await producer.send(topic, json.dumps(submission(n)).encode(), key=str(n).encode())
            for n in range(backlog)
        ]
        await asyncio.gather(*sends)
        task = asyncio.create_task(consumer.run())
        started = time.monotonic()
        finished = await counter.wait_for(backlog, timeout=seconds * 20 + 60)
        drained = len(counter.timestamps)
        rate = drained / (finished - started)

        # Paced: each raw record's timestamp against the timestamp of the request it became.
        counter.timestamps.clear()
        target = max(rate / 2, 1.0)
        produced: dict[bytes, int] = {}
        paced_from = time.monotonic()
        deadline = paced_from + seconds
        n = backlog
        while time.monotonic() < deadline:
            key = f"paced-{n}".encode()
            body = submission(n) | {"submission_id": key.decode()}
            metadata = await (await producer.send(topic, json.dumps(body).encode(), key=key))
            # intake keys the request by its id, which the submission id determines
            produced[str(request_id_for_submission(key.decode())).encode()] = metadata.timestamp
            n += 1
            await asyncio.sleep(1 / target)
        offered = len(produced) / (time.monotonic() - paced_from)
        await counter.wait_for(len(produced), timeout=60)
        latencies = [
            (counter.timestamps[k] - produced[k]) / 1000
            for k in produced
            if k in counter.timestamps
        ]
        consumer.stop()
        await task
    finally:
        await counter.stop()
        await producer.stop()
    return {
        "backlog": backlog,
        "drained": drained,
        "per_second": round(rate, 1),
        "paced_offered_per_second": round(offered, 1),
        "paced_accepted": len(latencies),
        **latency_ms(latencies),
    }


# --- the run ------------------------------------------------------------------------------------


async def run(endpoints: Endpoints, seconds: float, concurrency: int) -> dict:
    kafka = await scratch_topics(endpoints.kafka_bootstrap)
    async with scratch_database(endpoints.database_url, "bench_intake") as database_url:
        async with EventProducer(kafka, client_id="benchmark") as producer:
            await producer.publish(
                Envelope.wrap(
                    DefinitionPublished(
                        request_type="invoice_approval",
                        process="invoice-approval",
                        version=1,
                        title="Invoice approval",
                        request_schema=SCHEMA,
                        steps=[],
                    ),
                    source="benchmark",
                )
            )
        http = HttpSettings(port=free_port())
        service = await build_service(
            kafka=kafka,
            database=DatabaseSettings(url=database_url),
            http=http,
            # The benchmark measures intake, not its per-client rate limit.
            intake=IntakeSettings(submit_rate_per_second=1e9, submit_burst=10**9),
            auth=AUTH,
        )
        raw_consumer = next(w for w in service.workers if isinstance(w, SubmissionsConsumer))
        service.workers = [w for w in service.workers if w is not raw_consumer]
        server = uvicorn.Server(
            uvicorn.Config(service.app, host="127.0.0.1", port=http.port, log_level="warning")
        )
        async with service.running():
            serving = asyncio.create_task(server.serve())
            await service.definitions.caught_up.wait()
            while not server.started:  # noqa: ASYNC110 (uvicorn has no event for it)
                await asyncio.sleep(0.05)
            print("aiokafka …", file=sys.stderr)
            aiokafka = await aiokafka_rate(kafka, seconds, concurrency)
            print("HTTP …", file=sys.stderr)
            loop = asyncio.get_running_loop()
            with concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn")
            ) as pool:
                http_result = await loop.run_in_executor(
                    pool,
                    http_load,
                    f"http://127.0.0.1:{http.port}",
                    seconds,
                    concurrency,
                    bearer(Role.CLIENT, subject="benchmark-upstream"),
                )
            print("raw topic …", file=sys.stderr)
            raw = await raw_topic(kafka, raw_consumer, seconds)
            server.should_exit = True
            await serving
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "aiokafka": aiokafka,
        "http": http_result,
        "raw_topic": raw,
        "ratio_to_aiokafka": {
            "http": round(http_result["per_second"] / aiokafka["per_second"], 3),
            "raw_topic": round(raw["per_second"] / aiokafka["per_second"], 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=16, help="clients and senders")
    args = parser.parse_args()
    run_on_shared_stack("intake", lambda endpoints: run(endpoints, args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
