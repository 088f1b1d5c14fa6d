"""Workflow throughput and latency on the real stack, with where the time goes.

    uv run python benchmarks/workflow.py [--backlog 400] [--rate 30] [--seconds 10]

Builds the workflow service in this process (against the broker and PostgreSQL the test
fixtures use: the FLOWCASE_* environment, else the local stack), on its own topics and a fresh
database, with its connectors pointing at a small HTTP server on 127.0.0.1 (in a process of its
own) that answers every action at once. Routine requests (password resets through the identity
provider, standard software access) are published as `intake.RequestSubmitted` on the requests
topic and counted complete when their `workflow.InstanceCompleted` is on the workflow events
topic, so each one goes the whole way: consumer, engine, event store, connector calls, relay,
Kafka.

1. backlog: `--backlog` requests published at once; completed instances per second until the
   last one completes (throughput);
2. paced: `--rate` requests per second for `--seconds` (latency, submitted → completed: the
   request record's timestamp to the completion record's, both stamped by their producers).

Timers around each part (engine `decide`, event-store calls, relay publishing, projection
writes, connector calls) add up the busy time of each; the parts overlap in time, so the shares
are of the measured busy time, not of the wall time. Results go to
benchmarks/results/workflow-<date>.json. Nothing here is asserted: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import inspect
import multiprocessing
import multiprocessing.process
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from tokens import AUTH

import flowcase.workflow.instance as instance_module
from flowcase.bench.histograms import LatencyHistogram
from flowcase.bench.scratch import free_port, run_on_shared_stack, scratch_database, scratch_topics
from flowcase.devstack.endpoints import Endpoints
from flowcase.events import Envelope, Topic, decode_all
from flowcase.events.catalogue import Priority
from flowcase.events.catalogue.intake import Channel, RequestSubmitted
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.workflow.composition import WorkflowAssembly, build_service
from flowcase.workflow.read_model import ReadModel
from flowcase.workflow.settings import WorkflowSettings
from flowcase.workflow.webhook import WebhookConnector

ROUTINE = [
    ("password_reset", {"account": "jdoe", "system": "okta"}),
    ("software_access", {"software": "figma", "justification": "Design reviews with the team"}),
]
COMPLETED = b'"workflow.InstanceCompleted"'


class Stopwatch:
    """Busy seconds per part, from timers around the calls (any thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, part: str, seconds: float) -> None:
        with self._lock:
            self.seconds[part] += seconds

    def timed(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        if asyncio.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    self.add(part, time.perf_counter() - start)

            return timed_async

        @functools.wraps(fn)
        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(part, time.perf_counter() - start)

        return timed_sync

    def patch(self, part: str, owner: object, name: str) -> None:
        """Time every later call of `owner.name` as `part`. The service is instrumented in
        place, so its methods are replaced by name (a static method stays one)."""
        found = inspect.getattr_static(owner, name)
        if isinstance(found, staticmethod):
            setattr(owner, name, staticmethod(self.timed(part, found.__func__)))
        else:
            setattr(owner, name, self.timed(part, getattr(owner, name)))

    def reset(self) -> None:
        self.seconds.clear()


def instrument(service: WorkflowAssembly, watch: Stopwatch) -> None:
    """Timers around each part. `decide` runs inside the application's calls, so the event
    store's share is the application's time minus the engine's."""
    watch.patch("engine", instance_module, "decide")
    app = service.application
    for name in (
        "submit",
        "start_all",
        "handle",
        "handle_all",
        "consumed",
        "last_consumed",
        "instance",
        "state",
        "pending_action",
    ):
        watch.patch("application", app, name)
    watch.patch("notification log", app.recorder, "select_notifications")
    watch.patch("kafka publish", service._producer, "publish_all")
    watch.patch("projection writes", ReadModel, "apply")


def serve_far_side(port: int) -> None:
    """The systems the connectors call, answering every action at once (its own process, so
    it does not share the service's event loop)."""
    app = FastAPI()

    @app.post("/hooks/{name}")
    async def hook(name: str) -> dict[str, Any]:
        return {"done": True, "connector": name}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def far_side() -> tuple[str, multiprocessing.process.BaseProcess]:
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(
        target=serve_far_side, args=(port,), daemon=True
    )
    process.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return f"http://127.0.0.1:{port}", process


class Completions:
    """Completion timestamps (ms) by request id, read from the workflow events topic."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.topic = kafka.topic(Topic.WORKFLOW_EVENTS)
        self.consumer = AIOKafkaConsumer(enable_auto_commit=False, **kafka.client_options())
        self.at: dict[uuid.UUID, int] = {}
        self.changed = asyncio.Event()

    async def run(self) -> None:
        await self.consumer.start()
        partitions = self.consumer.partitions_for_topic(self.topic)
        while not partitions:
            await self.consumer._client.force_metadata_update()
            partitions = self.consumer.partitions_for_topic(self.topic)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        try:
            while True:
                batch = await self.consumer.getmany(timeout_ms=100)
                for records in batch.values():
                    for record in records:
                        if COMPLETED in record.value:
                            [*_, envelope] = decode_all(record.value)
                            assert envelope.request_id is not None
                            self.at[envelope.request_id] = record.timestamp
                self.changed.set()
        finally:
            await self.consumer.stop()

    async def wait_for(self, ids: set[uuid.UUID], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ids <= self.at.keys():
            if time.monotonic() > deadline:
                missing = len(ids - self.at.keys())
                raise TimeoutError(f"{missing} of {len(ids)} instances did not complete")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1.0)


def envelope(index: int) -> Envelope:
    request_type, payload = ROUTINE[index % len(ROUTINE)]
    request_id = uuid.uuid4()
    return Envelope.wrap(
        RequestSubmitted(
            request_id=request_id,
            request_type=request_type,
            requester="bench@example.com",
            priority=Priority.NORMAL,
            submitted_at=datetime.now(UTC),
            channel=Channel.KAFKA,
            payload=payload,
        ),
        source="benchmark",
        request_id=request_id,
    )


def request_of(envelope: Envelope) -> uuid.UUID:
    request_id = envelope.request_id
    assert request_id is not None, "every benchmark envelope is wrapped with its request id"
    return request_id


def shares(watch: Stopwatch, completed: int) -> dict[str, Any]:
    seconds = dict(watch.seconds)
    engine = seconds.get("engine", 0.0)
    parts = {
        "engine": engine,
        "event store": seconds.get("application", 0.0)
        - engine
        + seconds.get("notification log", 0.0),
        "kafka (relay publishing, acks=all)": seconds.get("kafka publish", 0.0),
        "projection writes (read model and timers)": seconds.get("projection writes", 0.0),
        "connectors (HTTP to the far side)": seconds.get("connectors", 0.0),
    }
    busy = sum(parts.values())
    return {
        part: {
            "busy_seconds": round(value, 3),
            "ms_per_instance": round(1000 * value / completed, 3),
            "share": round(value / busy, 3),
        }
        for part, value in parts.items()
    }


async def run(endpoints: Endpoints, backlog: int, rate: float, seconds: float) -> dict[str, Any]:
    kafka = await scratch_topics(endpoints.kafka_bootstrap)
    url, far = await far_side()
    watch = Stopwatch()
    watch.patch("connectors", WebhookConnector, "run")
    try:
        async with scratch_database(endpoints.database_url, "bench_workflow") as database_url:
            return await measure(kafka, database_url, url, watch, backlog, rate, seconds)
    finally:
        far.terminate()


async def measure(
    kafka: KafkaSettings,
    database_url: str,
    url: str,
    watch: Stopwatch,
    backlog: int,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    service = await build_service(
        kafka,
        DatabaseSettings(url=database_url),
        WorkflowSettings(
            connectors={name: f"{url}/hooks/{name}" for name in ("identity-provider", "email")}
        ),
        auth=AUTH,
    )
    instrument(service, watch)
    completions = Completions(kafka)
    watching = asyncio.create_task(completions.run())
    async with service.running(), EventProducer(kafka, client_id="benchmark") as producer:
        await service.publisher.published.wait()
        # Warm up: group join, connections, first compilations.
        warm = [envelope(i) for i in range(10)]
        await producer.publish_all(warm)
        await completions.wait_for({request_of(e) for e in warm}, 60)
        watch.reset()

        print(f"backlog of {backlog} …", file=sys.stderr)
        batch = [envelope(i) for i in range(backlog)]
        sent = await producer.publish_all(batch)
        ids = {request_of(e) for e in batch}
        await completions.wait_for(ids, 600)
        first = min(m.timestamp for m in sent)
        last = max(completions.at[i] for i in ids)
        backlog_result = {
            "requests": backlog,
            "completed_per_second": round(backlog / ((last - first) / 1000), 1),
            "seconds": round((last - first) / 1000, 2),
            "time_shares": shares(watch, backlog),
        }

        print(f"paced at {rate}/s for {seconds}s …", file=sys.stderr)
        watch.reset()
        submitted: dict[uuid.UUID, int] = {}
        count = int(rate * seconds)
        start = time.monotonic()
        for i in range(count):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            one = envelope(i)
            [meta] = await producer.publish_all([one])
            submitted[request_of(one)] = meta.timestamp
        await completions.wait_for(set(submitted), 120)
        latencies = [float(completions.at[i] - t) for i, t in submitted.items()]
        paced = {
            "offered_per_second": rate,
            "requests": count,
            "latency_ms": LatencyHistogram.of_seconds(ms / 1000 for ms in latencies).summary(),
            "time_shares": shares(watch, count),
        }
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watching
    return {
        "routine_mix": [request_type for request_type, _ in ROUTINE],
        "backlog": backlog_result,
        "paced": paced,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=400, help="requests published at once")
    parser.add_argument("--rate", type=float, default=30.0, help="paced requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced phase")
    args = parser.parse_args()
    run_on_shared_stack(
        "workflow", lambda endpoints: run(endpoints, args.backlog, args.rate, args.seconds)
    )


if __name__ == "__main__":
    main()
