"""The reliability harness: a dedicated stack, a load driver with its own ground truth, faults,
and the checks of what the platform did against what the driver knows it asked for.

Everything runs on a `DedicatedStack` (its own Kafka, PostgreSQL, services and webhook sink on
free ports), never on the shared local stack: the faults kill services and restart the broker
and the database.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import secrets
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from flowcase.devstack.consumer_lag import consumer_lag
from flowcase.devstack.dedicated import DedicatedStack
from flowcase.devstack.layout import Layout
from flowcase.events import Envelope, Topic, decode_all
from flowcase.events.catalogue import case as case_events
from flowcase.events.catalogue import intake as intake_events
from flowcase.events.catalogue import workflow as workflow_events
from flowcase.events.codec import EventDecodeError
from flowcase.events.kafka import (
    EventProducer,
    partitions_of,
    read_to_end,
    seek_to_start,
    stop_consumer,
)
from flowcase.events.kafka.consumer import Record
from flowcase.events.settings import KafkaSettings
from flowcase.governance.api_models import Figures, StepFigures
from flowcase.governance.metrics import measure, process_types
from flowcase.governance.projector import fold
from flowcase.governance.windows import Period
from flowcase.intake.identity import request_id_for_submission
from flowcase.runtime.auth import Role, mint_token
from flowcase.runtime.settings import AuthSettings

APPROVAL_STEP = "finance-approval"
# The dedicated stack's service, Kafka and PostgreSQL logs are kept here after a run.
LOGS = Layout.default().home / "reliability-logs"
TERMINAL = {"completed", "rejected", "resolved_by_case"}
# HTTP answers that mean "not now" during a fault: retried with the same Idempotency-Key.
RETRIABLE = {429, 500, 502, 503, 504}


# --- the dedicated platform ------------------------------------------------------------------


@dataclass
class Platform:
    stack: DedicatedStack
    kafka: KafkaSettings
    auth: AuthSettings

    def url(self, service: str) -> str:
        return self.stack.services[service].url

    def token(self) -> str:
        return mint_token(
            self.auth, subject="reliability-driver", roles=[Role.ADMIN], ttl=timedelta(days=1)
        )

    def client(self, service: str, timeout: float = 15.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url(service),
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=timeout,
        )

    async def read(self, topic: Topic) -> list[Record]:
        """Every record on a platform topic now."""
        return await read_to_end(self.kafka, self.kafka.topic(topic))

    async def all_ready(self, timeout: float = 90.0) -> dict[str, bool]:
        deadline = time.monotonic() + timeout
        while True:
            ready = {
                name: await asyncio.to_thread(s.ready) for name, s in self.stack.services.items()
            }
            if all(ready.values()) or time.monotonic() > deadline:
                return ready
            await asyncio.sleep(0.5)


@pytest.fixture(scope="session")
async def platform() -> AsyncIterator[Platform]:
    secret = secrets.token_urlsafe(32)
    stack = DedicatedStack(
        service_env={
            "FLOWCASE_AUTH_DEV_SECRET": secret,
            # The suite is about faults, not rate limits: the driver is one fast client.
            "FLOWCASE_INTAKE_SUBMIT_RATE_PER_SECOND": "100000",
            "FLOWCASE_INTAKE_SUBMIT_BURST": "100000",
            "FLOWCASE_WORKFLOW_TIMER_POLL_SECONDS": "1",
        }
    )
    try:
        await asyncio.to_thread(stack.start_infrastructure)
        await asyncio.to_thread(stack.start_services)
        yield Platform(
            stack=stack,
            kafka=KafkaSettings(bootstrap=stack.kafka_bootstrap),
            auth=AuthSettings(dev_secret=secret),
        )
    finally:
        await asyncio.to_thread(
            # The process id too: two test workers may stop their platforms in the same second.
            stack.stop,
            keep_logs=LOGS / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}",
        )


# --- ground truth ------------------------------------------------------------------------------


@dataclass
class Expected:
    """A request the driver submitted and the platform accepted, and the outcome it must reach."""

    request_id: UUID
    submission_id: str
    kind: str  # routine | rejecting | approval | escalating
    request_type: str
    channel: str  # http | kafka
    outcome: str
    sent_at: float  # monotonic, for latency
    body: dict[str, Any]


@dataclass
class GroundTruth:
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    accepted: dict[UUID, Expected] = field(default_factory=dict)
    # Raw bad inputs: their bytes, which must come back as a rejection (or dead-letter) record.
    bad_raw: dict[bytes, str] = field(default_factory=dict)
    # Envelopes put straight on consumed topics, which every consumer must dead-letter.
    bad_envelopes: dict[bytes, str] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)  # what went wrong while driving
    faults: Counter[str] = field(default_factory=Counter)
    resubmitted: int = 0  # duplicates offered on purpose
    republished: int = 0


@pytest.fixture(scope="session")
def truth() -> GroundTruth:
    return GroundTruth()


def submission_of(truth: GroundTruth, n: int, kind: str, rng: random.Random) -> tuple[dict, str]:
    """A valid submission of `kind` and the outcome it must end with."""
    sid = f"rel-{truth.run_id}-{n}"
    requester = f"requester-{n % 13}"
    if kind == "routine":
        request_type, payload = rng.choice(
            [
                (
                    "password_reset",
                    {"account": f"user{n}", "system": rng.choice(["okta", "github", "jira"])},
                ),
                ("software_access", {"software": "slack", "justification": "Team chat for work"}),
                (
                    "invoice_approval",
                    {
                        "invoice_id": f"INV-{n}",
                        "vendor": "Acme",
                        "amount": 120.5,
                        "currency": "EUR",
                    },
                ),
            ]
        )
        outcome = "completed"
    elif kind == "rejecting":  # valid for intake, refused by the workflow's validate step
        request_type, payload = "password_reset", {"account": f"user {n}", "system": "okta"}
        outcome = "rejected"
    elif kind == "approval":
        amount = rng.choice([1500, 12000, 64000])
        request_type = "invoice_approval"
        payload = {
            "invoice_id": f"INV-{n}",
            "vendor": "Globex",
            "amount": amount,
            "currency": "USD",
        }
        outcome = "completed"
    else:  # escalating: a rule, or no branch matched
        request_type, payload = rng.choice(
            [
                ("access_complaint", {"system": "payroll", "complaint": f"Locked out ({n})"}),
                (
                    "software_access",
                    {"software": f"tool-{n}", "justification": "Our vendor only supports it"},
                ),
            ]
        )
        outcome = "resolved_by_case"
    body = {
        "submission_id": sid,
        "request_type": request_type,
        "requester": requester,
        "priority": rng.choice(["low", "normal", "high"]),
        "payload": payload,
    }
    return body, outcome


MIX = (("routine", 0.45), ("rejecting", 0.05), ("approval", 0.25), ("escalating", 0.25))


# --- the driver ----------------------------------------------------------------------------------


class Driver:
    """Submits the mix, approves and resolves what waits for a person, and tails outcomes."""

    def __init__(self, platform: Platform, truth: GroundTruth, *, seed: int = 7) -> None:
        self.platform, self.truth = platform, truth
        self.rng = random.Random(seed)
        self.n = len(truth.accepted) + 10_000 * seed
        self.producer = EventProducer(platform.kafka, client_id="reliability-driver")
        self.completed_at: dict[UUID, float] = {}  # first InstanceCompleted seen, monotonic
        self.submit_latency: list[tuple[float, float]] = []  # (when, seconds to 202/ack)
        self.approved: set[UUID] = set()
        self.resolved: set[UUID] = set()  # case ids
        self.operator_errors: Counter[str] = Counter()  # answers a person would not expect
        self._tasks: list[asyncio.Task[Any]] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()

    async def __aenter__(self) -> Driver:
        await self.producer.start()
        self.intake = self.platform.client("intake")
        self.workflow = self.platform.client("workflow")
        self.case = self.platform.client("case")
        self._tasks = [
            asyncio.create_task(self._tail_outcomes()),
            asyncio.create_task(self._operate()),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        for task in [*self._tasks, *self._inflight]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._inflight, return_exceptions=True)
        for client in (self.intake, self.workflow, self.case):
            await client.aclose()
        await self.producer.stop()

    # submitting

    def pick_kind(self) -> str:
        return self.rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]

    def submit_soon(self, kind: str | None = None, channel: str | None = None) -> None:
        """Submit in the background (a submission may wait out a fault)."""
        task = asyncio.create_task(self.submit(kind, channel))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def drain(self, timeout: float = 120.0) -> None:
        """Wait until every submission in flight was accepted."""
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=timeout)

    async def submit(self, kind: str | None = None, channel: str | None = None) -> Expected:
        kind = kind or self.pick_kind()
        channel = channel or self.rng.choice(["http", "http", "kafka"])
        self.n += 1
        body, outcome = submission_of(self.truth, self.n, kind, self.rng)
        started = time.monotonic()
        if channel == "http":
            request_id = await self._post(body)
        else:
            request_id = await self._publish_raw(body)
        self.submit_latency.append((started, time.monotonic() - started))
        expected = Expected(
            request_id,
            body["submission_id"],
            kind,
            body["request_type"],
            channel,
            outcome,
            started,
            body,
        )
        self.truth.accepted[request_id] = expected
        return expected

    async def _post(self, body: dict[str, Any]) -> UUID:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.intake.post(
                    "/v1/requests", json=body, headers={"Idempotency-Key": body["submission_id"]}
                )
            except httpx.HTTPError:
                await asyncio.sleep(min(0.2 * attempt, 2))
                continue
            if response.status_code == 202:
                return UUID(response.json()["request_id"])
            if response.status_code in RETRIABLE:
                retry_after = float(response.headers.get("retry-after", "1") or 1)
                await asyncio.sleep(min(retry_after, 2))
                continue
            raise AssertionError(
                f"valid submission refused: {response.status_code} {response.text}"
            )

    async def _publish_raw(self, body: dict[str, Any]) -> UUID:
        value = json.dumps(body).encode()
        while True:
            try:
                await self.producer.send_raw(
                    self.platform.kafka.topic(Topic.INTAKE_SUBMISSIONS),
                    value,
                    key=body["submission_id"].encode(),
                    headers=[],
                )
                return request_id_for_submission(body["submission_id"])
            except Exception:  # the broker is restarting: the same bytes again are one request
                await asyncio.sleep(0.5)

    async def resubmit(self, expected: Expected) -> None:
        """Offer an accepted submission again on both channels: it must stay one request."""
        self.truth.resubmitted += 2
        while True:  # over HTTP without an Idempotency-Key: the submission_id recognises it
            try:
                response = await self.intake.post("/v1/requests", json=expected.body)
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            if response.status_code not in RETRIABLE:
                break
            await asyncio.sleep(1)
        if (
            response.status_code != 202
            or UUID(response.json()["request_id"]) != expected.request_id
        ):
            self.truth.unexpected.append(
                f"resubmission of {expected.submission_id}: {response.status_code} {response.text}"
            )
        await self._publish_raw(expected.body)

    # people in the loop

    async def _operate(self) -> None:
        """Approve pending invoice approvals; resolve open cases. Forever, once a second."""
        while not self._stop.is_set():
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                await self._approve_pending()
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                await self._resolve_open_cases()
            await asyncio.sleep(1.0)

    async def _approve_pending(self) -> None:
        offset = 0
        while True:
            page = await self.workflow.get(
                "/v1/instances",
                params={
                    "status": "running",
                    "request_type": "invoice_approval",
                    "limit": 200,
                    "offset": offset,
                },
            )
            if page.status_code != 200:
                return
            items = page.json()["items"]
            for item in items:
                if item["current_step"] == APPROVAL_STEP:
                    await self._approve(UUID(item["request_id"]))
            if len(items) < 200:
                return
            offset += 200

    async def _approve(self, request_id: UUID) -> None:
        response = await self.workflow.post(
            f"/v1/instances/{request_id}/approvals/{APPROVAL_STEP}",
            json={"decision": "approved", "rationale": "Within budget", "relied_on": []},
        )
        if response.status_code == 200:
            self.approved.add(request_id)
        elif response.status_code not in (409, *RETRIABLE):
            self.operator_errors[f"approve {response.status_code} {response.text[:300]}"] += 1

    async def _resolve_open_cases(self) -> None:
        cursor = None
        for status in ("open",):
            while True:
                params: dict[str, Any] = {"status": status, "limit": 200}
                if cursor:
                    params["cursor"] = cursor
                page = await self.case.get("/v1/cases", params=params)
                if page.status_code != 200:
                    return
                data = page.json()
                for item in data["items"]:
                    await self._resolve(UUID(item["case_id"]), item["version"])
                cursor = data.get("next_cursor")
                if not cursor:
                    break

    async def _resolve(self, case_id: UUID, version: int) -> None:
        for _ in range(3):
            response = await self.case.post(
                f"/v1/cases/{case_id}/resolution",
                json={
                    "expected_version": version,
                    "outcome_code": "handled",
                    "rationale": "Handled with the requester",
                    "relied_on": [],
                    "gap_acknowledged": True,
                },
            )
            if response.status_code == 200:
                self.resolved.add(case_id)
                return
            if response.status_code != 409:
                if response.status_code not in RETRIABLE:
                    key = f"resolve {response.status_code} {response.text[:300]}"
                    self.operator_errors[key] += 1
                return
            current = await self.case.get(f"/v1/cases/{case_id}")
            if current.status_code != 200 or current.json()["status"] != "open":
                return
            version = current.json()["version"]

    # watching outcomes

    async def _tail_outcomes(self) -> None:
        topic = self.platform.kafka.topic(Topic.WORKFLOW_EVENTS)
        while not self._stop.is_set():
            consumer = AIOKafkaConsumer(
                enable_auto_commit=False, **self.platform.kafka.client_options()
            )
            try:
                await consumer.start()
                tps = await partitions_of(consumer, topic)
                consumer.assign(tps)
                await seek_to_start(consumer, tps)
                while not self._stop.is_set():
                    batches = await consumer.getmany(timeout_ms=500)
                    for records in batches.values():
                        for record in records:
                            self._saw(record)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1)  # the broker restarts: read again from the beginning
            finally:
                with contextlib.suppress(Exception):
                    await stop_consumer(consumer)

    def _saw(self, record: Record) -> None:
        try:
            envelopes = decode_all(record.value or b"")
        except EventDecodeError:
            return
        for envelope in envelopes:
            if isinstance(envelope.payload, workflow_events.InstanceCompleted):
                self.completed_at.setdefault(envelope.payload.request_id, time.monotonic())

    def outstanding(self) -> list[Expected]:
        return [e for rid, e in self.truth.accepted.items() if rid not in self.completed_at]

    def latencies(self, since: float = 0.0) -> dict[str, float | None]:
        """Submission to terminal outcome of routine requests, and submission acknowledgement."""
        done = [
            self.completed_at[e.request_id] - e.sent_at
            for e in self.truth.accepted.values()
            if e.kind in ("routine", "rejecting")
            and e.request_id in self.completed_at
            and e.sent_at >= since
        ]
        acks = [seconds for at, seconds in self.submit_latency if at >= since]
        return {
            "outcome_p50_seconds": _pct(done, 50),
            "outcome_p95_seconds": _pct(done, 95),
            "ack_p50_seconds": _pct(acks, 50),
            "ack_p95_seconds": _pct(acks, 95),
            "samples": len(done),
        }


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 4)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 4)


@pytest.fixture
async def driver(platform: Platform, truth: GroundTruth) -> AsyncIterator[Driver]:
    async with Driver(platform, truth) as d:
        yield d


# --- faults ----------------------------------------------------------------------------------


class Faults:
    def __init__(self, platform: Platform, truth: GroundTruth) -> None:
        self.platform, self.truth = platform, truth
        self.log: list[dict[str, Any]] = []

    async def _timed(self, name: str, action: Callable[[], Awaitable[None]]) -> None:
        started = time.monotonic()
        await action()
        self.truth.faults[name] += 1
        self.log.append({"fault": name, "seconds": round(time.monotonic() - started, 2)})

    async def kill(self, service: str) -> None:
        """SIGKILL a service and start it again at once."""
        instance = self.platform.stack.services[service]

        async def action() -> None:
            instance.kill()
            await asyncio.to_thread(instance.start)

        await self._timed(f"sigkill {service}", action)

    async def restart_kafka(self) -> None:
        await self._timed(
            "restart kafka", lambda: asyncio.to_thread(self.platform.stack.restart_kafka)
        )

    async def restart_postgres(self) -> None:
        await self._timed(
            "restart postgres", lambda: asyncio.to_thread(self.platform.stack.restart_postgres)
        )

    async def rebalance(self, service: str, stay_seconds: float = 4.0) -> None:
        """A second replica of a consumer service joins its groups, works a while, leaves."""

        async def action() -> None:
            replica = self.platform.stack.replica(service)
            await asyncio.to_thread(replica.start)
            await asyncio.sleep(stay_seconds)
            await asyncio.to_thread(replica.stop)

        await self._timed(f"rebalance {service}", action)

    async def duplicate_delivery(self, per_topic: int = 30) -> None:
        """Publish again, byte for byte, records already on the topics the services consume."""

        async def action() -> None:
            settings = self.platform.kafka
            async with EventProducer(settings, client_id="reliability-duplicates") as producer:
                for topic in (
                    Topic.INTAKE_SUBMISSIONS,
                    Topic.INTAKE_REQUESTS,
                    Topic.WORKFLOW_EVENTS,
                    Topic.CASE_EVENTS,
                ):
                    records = await read_to_end(settings, settings.topic(topic))
                    chosen = random.Random(len(records)).sample(
                        records, min(per_topic, len(records))
                    )
                    for record in chosen:
                        if topic is Topic.INTAKE_SUBMISSIONS and record.value in self.truth.bad_raw:
                            continue  # a bad input twice would be two rejections, as it should
                        await producer.send_raw(
                            record.topic,
                            record.value,
                            key=record.key,
                            headers=list(record.headers or ()),
                        )
                        self.truth.republished += 1

        await self._timed("duplicate delivery", action)


@pytest.fixture
def faults(platform: Platform, truth: GroundTruth) -> Faults:
    return Faults(platform, truth)


# --- reading the topics back ---------------------------------------------------------------------


async def wait_for_quiescence(driver: Driver, stall: float) -> dict[str, Any]:
    """Until every accepted request has an outcome and every group caught up, twice in a row.

    Bounded by progress, not by the clock: it fails once `stall` seconds pass in which neither
    the requests without an outcome nor the groups' lag went down. A loaded machine is slow,
    not stuck, and its waits must not read as lost work."""
    started = time.monotonic()
    stalled_at = started + stall
    best: tuple[int, int] | None = None
    calm = 0
    lag: dict[str, int] = {}
    while time.monotonic() < stalled_at:
        outstanding = driver.outstanding()
        lag = {}
        with contextlib.suppress(Exception):
            lag = await consumer_lag(driver.platform.kafka)
        if not outstanding and lag and not any(lag.values()):
            calm += 1
            if calm >= 2:
                return {"lag": lag, "seconds": round(time.monotonic() - started, 1)}
        else:
            calm = 0
        if lag:
            now = (len(outstanding), sum(lag.values()))
            if best is None or now[0] < best[0] or now[1] < best[1]:
                best = now if best is None else (min(now[0], best[0]), min(now[1], best[1]))
                stalled_at = time.monotonic() + stall
        await asyncio.sleep(1.0)
    missing = driver.outstanding()
    statuses = {}
    for expected in missing[:10]:
        with contextlib.suppress(httpx.HTTPError):
            r = await driver.intake.get(f"/v1/requests/{expected.request_id}")
            statuses[str(expected.request_id)] = (
                expected.kind,
                r.status_code,
                r.json().get("status"),
            )
    raise AssertionError(
        f"no progress to quiescence for {stall:.0f} s: {len(missing)} requests without an outcome "
        f"(first: {statuses}); lag {lag}; operator errors {dict(driver.operator_errors)}"
    )


# --- the checks ----------------------------------------------------------------------------


@dataclass
class Verdict:
    figures: dict[str, Any]
    problems: list[str]


async def verify(platform: Platform, truth: GroundTruth) -> Verdict:
    """Everything the platform shows, against the ground truth. Problems are listed, not raised."""
    settings = platform.kafka
    problems: list[str] = list(truth.unexpected)
    # A service the suite did not kill must not have exited (faults restart their victims).
    problems += [
        f"{name} is not running" for name, s in platform.stack.services.items() if not s.pid
    ]
    topics = {t: await read_to_end(settings, settings.topic(t)) for t in Topic}
    envelopes: dict[Topic, list[Envelope]] = {}
    for t, records in topics.items():
        if t in (Topic.INTAKE_SUBMISSIONS, Topic.DEADLETTER):
            continue
        envelopes[t] = []
        for record in records:
            try:
                envelopes[t].extend(decode_all(record.value or b""))
            except EventDecodeError:
                if record.value not in truth.bad_envelopes:
                    problems.append(f"undecodable record on {t} not injected by the suite")

    accepted = truth.accepted
    # intake: one RequestSubmitted (one event id) per accepted request, none other
    submitted: dict[UUID, set[UUID]] = defaultdict(set)
    for e in envelopes[Topic.INTAKE_REQUESTS]:
        if isinstance(e.payload, intake_events.RequestSubmitted):
            submitted[e.payload.request_id].add(e.event_id)
    _exactly_one(problems, "intake.RequestSubmitted", submitted, accepted)

    # workflow: one instance and one terminal outcome per request, the outcome expected
    started: dict[UUID, set[UUID]] = defaultdict(set)
    completed: dict[UUID, set[UUID]] = defaultdict(set)
    outcome: dict[UUID, str] = {}
    escalated: dict[UUID, set[UUID]] = defaultdict(set)
    for e in envelopes[Topic.WORKFLOW_EVENTS]:
        p = e.payload
        if isinstance(p, workflow_events.InstanceStarted):
            started[p.request_id].add(e.event_id)
        elif isinstance(p, workflow_events.InstanceCompleted):
            completed[p.request_id].add(e.event_id)
            outcome[p.request_id] = p.outcome.value
        elif isinstance(p, workflow_events.EscalatedToCase):
            escalated[p.request_id].add(e.event_id)
    _exactly_one(problems, "workflow.InstanceStarted", started, accepted)
    _exactly_one(problems, "workflow.InstanceCompleted", completed, accepted)
    wrong = {
        str(rid): (x.kind, outcome.get(rid), x.outcome)
        for rid, x in accepted.items()
        if outcome.get(rid) != x.outcome
    }
    if wrong:
        problems.append(f"{len(wrong)} requests with another outcome than expected: {_few(wrong)}")

    # case: one case per escalated request, each resolved once
    opened: dict[UUID, set[UUID]] = defaultdict(set)
    case_ids: dict[UUID, set[UUID]] = defaultdict(set)
    resolved: dict[UUID, set[UUID]] = defaultdict(set)
    for e in envelopes[Topic.CASE_EVENTS]:
        p = e.payload
        if isinstance(p, case_events.CaseOpened) and p.request_id:
            opened[p.request_id].add(e.event_id)
            case_ids[p.request_id].add(p.case_id)
        elif isinstance(p, case_events.CaseResolved) and p.request_id:
            resolved[p.request_id].add(e.event_id)
    escalating = {rid: x for rid, x in accepted.items() if x.kind == "escalating"}
    _exactly_one(problems, "workflow.EscalatedToCase", escalated, escalating)
    _exactly_one(problems, "case.CaseOpened", opened, escalating)
    _exactly_one(problems, "case id", case_ids, escalating)
    _exactly_one(problems, "case.CaseResolved", resolved, escalating)

    # the APIs: intake's status, workflow's instance list, case search
    async with (
        platform.client("intake") as intake,
        platform.client("workflow") as workflow,
        platform.client("case") as case_api,
        platform.client("governance") as governance,
    ):
        statuses = await _intake_statuses(intake)
        wrong_status = {
            str(rid): (statuses.get(rid), x.outcome)
            for rid, x in accepted.items()
            if statuses.get(rid) != x.outcome
        }
        if wrong_status:
            problems.append(f"{len(wrong_status)} intake statuses differ: {_few(wrong_status)}")
        instances = Counter(await _listed(workflow, "/v1/instances", "request_id", offset=True))
        dup = {k: v for k, v in instances.items() if v > 1}
        missing = [r for r in accepted if instances[str(r)] != 1]
        if dup or missing:
            problems.append(f"workflow instances: duplicated {dup}, missing {_few(missing)}")
        cases = Counter(await _listed(case_api, "/v1/cases", "request_id", offset=False))
        dup_cases = {k: v for k, v in cases.items() if v > 1}
        missing_cases = [r for r in escalating if cases[str(r)] != 1]
        if dup_cases or missing_cases:
            problems.append(f"cases: duplicated {dup_cases}, missing {_few(missing_cases)}")
        governance_figures = await _governance(governance, truth, envelopes, problems)

    # rejections and the dead-letter topic hold exactly the bad inputs
    rejected: Counter[bytes] = Counter()
    for e in envelopes[Topic.INTAKE_REJECTED]:
        if isinstance(e.payload, intake_events.RequestRejected):
            original = base64.b64decode(e.payload.original_base64)
            if original not in truth.bad_raw:
                problems.append(f"a rejection of a submission that was not bad: {original[:200]!r}")
            elif not e.payload.reasons:
                problems.append(f"a rejection without reasons: {original[:100]!r}")
            rejected[original] += 1
    deadlettered: dict[bytes, list[str]] = defaultdict(list)
    for record in topics[Topic.DEADLETTER]:
        headers = {k: v for k, v in record.headers or ()}
        reason = headers.get("flowcase.dlq.reason", b"").decode()
        value = record.value or b""
        if value not in truth.bad_envelopes and value not in truth.bad_raw:
            problems.append(
                f"dead-lettered but not bad: {reason} from "
                f"{headers.get('flowcase.dlq.consumer_group')}"
                f" {headers.get('flowcase.dlq.error', b'')[:300]!r} {value[:200]!r}"
            )
        if not reason or not headers.get("flowcase.dlq.error"):
            problems.append(f"a dead-letter record without its reason: {value[:100]!r}")
        deadlettered[value].append(reason)
    for value, what in truth.bad_raw.items():
        if rejected[value] + len(deadlettered.get(value, [])) < 1:
            problems.append(f"bad raw submission neither rejected nor dead-lettered: {what}")
    for value, what in truth.bad_envelopes.items():
        if not deadlettered.get(value):
            problems.append(f"bad envelope not dead-lettered: {what}")

    figures = {
        "accepted_requests": len(accepted),
        "by_kind": dict(Counter(x.kind for x in accepted.values())),
        "by_channel": dict(Counter(x.channel for x in accepted.values())),
        "outcomes": dict(Counter(outcome.get(r, "none") for r in accepted)),
        "outcomes_lost": sum(1 for r in accepted if not completed.get(r)),
        "outcomes_duplicated": sum(1 for r in accepted if len(completed.get(r, ())) > 1),
        "instances_duplicated": sum(1 for r in accepted if len(started.get(r, ())) > 1),
        "cases_duplicated": sum(1 for r in escalating if len(case_ids.get(r, ())) > 1),
        "faults": dict(truth.faults),
        "resubmitted": truth.resubmitted,
        "republished": truth.republished,
        "bad_raw": len(truth.bad_raw),
        "bad_envelopes": len(truth.bad_envelopes),
        "rejections": sum(rejected.values()),
        "deadlettered": sum(len(v) for v in deadlettered.values()),
        "topic_records": {str(t): len(r) for t, r in topics.items()},
        "governance": governance_figures,
    }
    return Verdict(figures, problems)


def _exactly_one(
    problems: list[str], what: str, seen: dict[UUID, set[Any]], expected: dict[UUID, Expected]
) -> None:
    missing = [r for r in expected if not seen.get(r)]
    many = {str(r): len(seen[r]) for r in expected if len(seen.get(r, ())) > 1}
    if missing or many:
        kinds = Counter(expected[r].kind for r in missing)
        problems.append(
            f"{what}: {len(missing)} missing ({dict(kinds)}: {_few(missing)}), "
            f"{len(many)} duplicated ({_few(many)})"
        )


def _few(items: Any, n: int = 5) -> str:
    items = list(items.items()) if isinstance(items, dict) else list(items)
    return f"{items[:n]}{' …' if len(items) > n else ''}"


async def _intake_statuses(client: httpx.AsyncClient) -> dict[UUID, str]:
    statuses: dict[UUID, str] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/requests", params=params)
        response.raise_for_status()
        data = response.json()
        for item in data["items"]:
            statuses[UUID(item["request_id"])] = item["status"]
        cursor = data.get("next_cursor")
        if not cursor:
            return statuses


async def _listed(client: httpx.AsyncClient, path: str, key: str, *, offset: bool) -> list[str]:
    values: list[str] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        response = await client.get(path, params=params)
        response.raise_for_status()
        data = response.json()
        values.extend(str(item[key]) for item in data["items"] if item.get(key))
        if offset:
            if len(data["items"]) < 200:
                return values
            params["offset"] = params.get("offset", 0) + 200
        else:
            if not data.get("next_cursor"):
                return values
            params["cursor"] = data["next_cursor"]


async def _governance(
    client: httpx.AsyncClient,
    truth: GroundTruth,
    envelopes: dict[Topic, list[Envelope]],
    problems: list[str],
) -> dict[str, Any]:
    """The API's figures equal `measure` over the events read back, and the ground truth."""
    facts = fold(e for t in envelopes.values() for e in t)
    start = truth.started_at.replace(minute=0, second=0, microsecond=0)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    period = Period(start, end)
    accepted_by_type = Counter(x.request_type for x in truth.accepted.values())
    escalated_by_type = Counter(
        x.request_type for x in truth.accepted.values() if x.kind == "escalating"
    )
    report: dict[str, Any] = {}
    for process_type in process_types(facts):
        # Open requests' promises are judged at the service's now, as here (within seconds).
        mine = measure(facts, process_type, period, now=datetime.now(UTC))
        response = await client.get(
            f"/v1/processes/{process_type}",
            params={"granularity": "hour", "since": start.isoformat(), "until": end.isoformat()},
        )
        if response.status_code != 200:
            problems.append(
                f"governance {process_type}: {response.status_code} {response.text[:300]}"
            )
            continue
        api = response.json()
        expected_totals = json.loads(Figures.of(mine).model_dump_json())
        if api["totals"] != expected_totals:
            diff = {
                k: (api["totals"].get(k), v)
                for k, v in expected_totals.items()
                if api["totals"].get(k) != v
            }
            problems.append(f"governance {process_type} totals (api, from events) differ: {diff}")
        expected_steps = [json.loads(StepFigures.of(s).model_dump_json()) for s in mine.steps]
        if api["steps"] != expected_steps:
            problems.append(f"governance {process_type} steps differ from the events' figures")
        if mine.volume != accepted_by_type[process_type]:
            problems.append(
                f"governance {process_type} volume {mine.volume}, "
                f"ground truth {accepted_by_type[process_type]}"
            )
        if mine.escalated != escalated_by_type[process_type]:
            problems.append(
                f"governance {process_type} escalated {mine.escalated}, "
                f"ground truth {escalated_by_type[process_type]}"
            )
        report[process_type] = {
            "volume": mine.volume,
            "escalated": mine.escalated,
            "exception_rate": mine.exception_rate,
        }
    missing_types = set(accepted_by_type) - set(report)
    if missing_types:
        problems.append(f"governance knows nothing of {sorted(missing_types)}")
    return report


@dataclass
class Checks:
    platform: Platform
    truth: GroundTruth

    async def quiescence(self, driver: Driver, stall: float = 120.0) -> dict[str, Any]:
        return await wait_for_quiescence(driver, stall)

    async def verify(self) -> Verdict:
        return await verify(self.platform, self.truth)

    async def lag(self) -> dict[str, int]:
        return await consumer_lag(self.platform.kafka)


@pytest.fixture
def checks(platform: Platform, truth: GroundTruth) -> Checks:
    return Checks(platform, truth)


# --- the bad-input corpus ------------------------------------------------------------------------


@dataclass(frozen=True)
class BadInput:
    name: str
    body: bytes | None  # None: a Kafka tombstone
    content_type: str = "application/json"
    headers: tuple[tuple[str, bytes], ...] = ()  # Kafka headers (raw) or extra HTTP headers


@dataclass(frozen=True)
class RawHttp:
    """A request written byte for byte on the socket (what an HTTP client refuses to send)."""

    name: str
    data: bytes


def _valid(n: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_type": "password_reset",
        "requester": f"fuzz-{n}",
        "priority": "normal",
        "payload": {"account": f"fuzz{n}", "system": "okta"},
    }
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


_DROP = object()


def _nested(depth: int, kind: str = "object") -> str:
    return ('{"a":' * depth + "1" + "}" * depth) if kind == "object" else "[" * depth + "]" * depth


def bad_submissions(max_body: int = 256 * 1024) -> list[BadInput]:
    """Submissions no channel may accept, each for a stated reason (names are unique)."""
    items: list[BadInput] = []

    def add(name: str, body: Any, **kw: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        items.append(BadInput(name, data, **kw))

    # malformed JSON
    for i, text in enumerate(
        [
            "",
            " ",
            "{",
            "}",
            '{"request_type": ',
            "{'request_type': 'x'}",
            '{"a": 1,}',
            "nul",
            '{"request_type": "password_reset" "requester": "x"}',
            "[1, 2",
            '"unterminated',
            '{"a": NaN}',
            "/* comment */ {}",
            '{"a": 1}{"b": 2}',
            "\x00\x01\x02",
            "<xml/>",
        ]
    ):
        add(f"malformed-json-{i}", text.encode())
    # JSON that is not an object
    not_objects: list[Any] = [None, 1, -3.5, True, "a string", [], [_valid(1)], {}]
    for i, value in enumerate(not_objects):
        add(f"not-a-submission-{i}", value)
    # wrongly typed fields
    wrong: dict[str, list[Any]] = {
        "request_type": [1, None, [], {}, "", "Password Reset", "../etc/passwd", "x" * 101],
        "requester": [1, None, [], "", "r" * 201],
        "priority": ["urgentest", 1, None, ""],
        # (12345 would be read as Unix seconds by a lax parser: a request dated 1970)
        "submitted_at": ["yesterday", "2026-11-24T09:15:00", "2026-13-45T00:00:00Z", [], 12345],
        "payload": [None, [], "text", 1],
        "submission_id": [1, [], "s" * 201],
        "tenant": [1, "t" * 101],
    }
    for field_name, values in wrong.items():
        for i, value in enumerate(values):
            add(f"wrong-type-{field_name}-{i}", _valid(1000 + i, **{field_name: value}))
    # missing fields
    for field_name in ("request_type", "requester", "payload"):
        add(f"missing-{field_name}", _valid(2000, **{field_name: _DROP}))
    # payloads against their request type's schema
    schema_violations = [
        ("password_reset", {"system": "okta"}),
        ("password_reset", {"account": "a", "system": "windows"}),
        ("password_reset", {"account": "", "system": "okta"}),
        ("password_reset", {"account": 42, "system": "okta"}),
        ("password_reset", {"account": "a" * 201, "system": "okta"}),
        ("software_access", {"software": "slack"}),
        ("software_access", {"software": "", "justification": "x"}),
        ("software_access", {"software": "x", "justification": "y", "monthly_cost": -1}),
        ("software_access", {"software": "x", "justification": "y", "monthly_cost": "cheap"}),
        (
            "invoice_approval",
            {"invoice_id": "I", "vendor": "V", "amount": "100", "currency": "EUR"},
        ),
        ("invoice_approval", {"invoice_id": "I", "vendor": "V", "amount": 100, "currency": "JPY"}),
        ("invoice_approval", {"invoice_id": "I", "vendor": "V", "currency": "EUR"}),
        ("access_complaint", {"system": "payroll"}),
        ("access_complaint", {"system": "", "complaint": ""}),
        ("hr_matter", {}),
        ("employee_onboarding", {}),
        ("multi_system_incident", {}),
        ("purchase_order", {}),
    ]
    for i, (request_type, payload) in enumerate(schema_violations):
        add(
            f"schema-{request_type}-{i}",
            _valid(3000 + i, request_type=request_type, payload=payload),
        )
    # unknown request types
    for i, request_type in enumerate(
        ["teleport_request", "password_reset_v2", "invoice.approval", "a", "z" * 100]
    ):
        add(f"unknown-type-{i}", _valid(4000 + i, request_type=request_type))
    # a newer schema than anyone knows, or an envelope where a submission belongs
    add("future-schema-version-field", {**_valid(5000), "schema_version": 2})
    add("future-version-field", {**_valid(5001), "version": 99})
    add("unknown-extra-field", {**_valid(5002), "extra": {"x": 1}})
    add(
        "an-envelope-instead",
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "intake.RequestSubmitted",
            "schema_version": 99,
            "payload": _valid(5003),
        },
    )
    add(
        "an-envelope-v1-instead",
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "intake.RequestSubmitted",
            "schema_version": 1,
            "payload": _valid(5004),
        },
    )
    # oversized and huge strings
    add(
        "oversized-payload",
        _valid(6000, payload={"account": "a", "system": "okta", "pad": "x" * (max_body + 10)}),
    )
    add("oversized-requester", _valid(6001, requester="r" * (max_body + 10)))
    add("huge-requester", _valid(6002, requester="r" * 100_000))
    add("huge-request-type", _valid(6003, request_type="t" * 50_000))
    add("huge-submission-id", _valid(6004, submission_id="s" * 20_000))
    add("huge-account", _valid(6005, payload={"account": "a" * 200_000, "system": "okta"}))
    add("many-keys", _valid(6006, payload={f"k{i}": i for i in range(20_000)}))
    # deeply nested
    for depth in (1_000, 10_000, 100_000):
        add(
            f"nested-object-{depth}",
            f'{{"request_type":"password_reset","requester":"n{depth}","payload":{_nested(depth)}}}'.encode(),
        )
        add(f"nested-array-{depth}", _nested(depth, "array").encode())
    # not UTF-8
    for i, data in enumerate(
        [
            b'{"request_type": "password_reset", "requester": "\xff\xfe", "payload": {}}',
            b'\xef\xbb\xbf{"request_type": "password_reset"}',
            b'{"request_type": "password_reset", "requester": "a\xc3\x28", "payload": {}}',
            b'\xfe\xff\x00{\x00"',
            '{"requester": "\ud800"}'.encode("utf-8", "surrogatepass"),
        ]
    ):
        add(f"invalid-utf8-{i}", data)
    # control characters and hostile strings in otherwise well-formed submissions
    add("nul-in-request-type", _valid(7000, request_type="password_reset\u0000"))
    add("crlf-in-request-type", _valid(7001, request_type="password_reset\r\nX-Injected: 1"))
    add("script-in-type", _valid(7002, request_type="<script>alert(1)</script>"))
    add("sql-in-type", _valid(7003, request_type="x'; DROP TABLE requests; --"))
    # what the boundary policy names (docs/security.md): each once stalled or broke a consumer
    add("nul-in-requester", _valid(7100, requester="nul\u0000requester"))
    add("nul-in-submission-id", _valid(7101, submission_id="nul\u0000id"))
    add("nul-in-payload", _valid(7102, payload={"account": "a\u0000b", "system": "okta"}))
    add("nul-in-payload-key", _valid(7103, payload={"account": "a", "system": "okta", "\u0000": 1}))
    add("escaped-lone-surrogate", json.dumps(_valid(7104, requester="\ud800")).encode())
    add(
        "escaped-lone-surrogate-key",
        json.dumps(_valid(7105, payload={"account": "a", "system": "okta", "\udfff": 1})).encode(),
    )
    invoice = {"invoice_id": "INV-1", "vendor": "Acme", "amount": 1, "currency": "EUR"}
    for i, literal in enumerate(["NaN", "Infinity", "-Infinity", "1e400", "9" * 5000]):
        text = json.dumps(_valid(7110 + i, request_type="invoice_approval", payload=invoice))
        add(f"unusable-amount-{i}", text.replace('"amount": 1', f'"amount": {literal}').encode())
    for i, at in enumerate(
        ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]
    ):
        add(f"submitted-at-calendar-end-{i}", _valid(7120 + i, submitted_at=at))
    add("nested-past-the-policy", _valid(7130, payload=json.loads(_nested(40))))
    return items


def bad_http_requests(host: str, port: int, token: str) -> list[RawHttp]:
    """Requests only a hostile client sends: header injection, broken framing.

    Each carries a submission without a payload, so whichever layer judges it (the HTTP server's
    framing or intake's validation), the answer must be a 4xx.
    """
    body = json.dumps(_valid(8000, payload=_DROP)).encode()
    head = f"POST /v1/requests HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"

    def req(extra: str, payload: bytes = body, length: int | None = None) -> bytes:
        n = len(payload) if length is None else length
        return (
            head + extra + f"Content-Type: application/json\r\nContent-Length: {n}\r\n\r\n"
        ).encode("latin-1") + payload

    return [
        RawHttp("idempotency-key-with-lf", req("Idempotency-Key: a\nX-Injected: 1\r\n")),
        RawHttp("header-with-nul", req("Idempotency-Key: a\x00b\r\n")),
        RawHttp("header-name-with-space", req("Idem potency-Key: a\r\n")),
        RawHttp("huge-header", req("X-Pad: " + "p" * 200_000 + "\r\n")),
        RawHttp("two-content-lengths", req("Content-Length: 3\r\n")),
        RawHttp("chunked-and-length", req("Transfer-Encoding: chunked\r\n")),
        RawHttp("bad-request-line", b"POST /v1/requests HTTP/9.9 extra\r\n\r\n"),
        RawHttp("obs-fold-header", req("Idempotency-Key: a\r\n continued\r\n")),
        RawHttp("non-ascii-idempotency-key", req("Idempotency-Key: \xe9t\xe9\r\n")),
        RawHttp("overlong-idempotency-key", req("Idempotency-Key: " + "k" * 201 + "\r\n")),
    ]


def bad_envelopes(topic: Topic, n: int) -> list[bytes]:
    """Records on a consumed topic that no consumer can use (unique by `n`)."""
    request_id = uuid.uuid4()
    payloads = {
        Topic.INTAKE_REQUESTS: intake_events.RequestSubmitted(
            request_id=request_id,
            request_type="password_reset",
            requester=f"bad-{n}",
            submitted_at=datetime.now(UTC),
            channel="http",
            priority="normal",
            payload={"account": "x", "system": "okta"},
        ),
        Topic.WORKFLOW_EVENTS: workflow_events.InstanceCompleted(
            request_id=request_id, outcome="completed"
        ),
        Topic.CASE_EVENTS: case_events.CaseResolved(
            case_id=uuid.uuid4(),
            request_id=request_id,
            outcome_code="x",
            rationale="y",
            relied_on=["n-1"],
        ),
    }
    envelope = json.loads(
        Envelope.wrap(
            payloads[topic], source="reliability", request_id=request_id
        ).model_dump_json()
    )
    future = {**envelope, "schema_version": 99}
    unknown = {**envelope, "event_type": f"{topic.value.split('.')[1]}.Teleported"}
    broken = {**envelope, "payload": {"request_id": "not-a-uuid"}}
    return [
        json.dumps(future).encode(),
        json.dumps(unknown).encode(),
        json.dumps(broken).encode(),
        f"not json {n} {topic}".encode(),
    ]


@dataclass
class Corpus:
    """The corpus of bad inputs as fixtures hand it to tests (test modules cannot import it)."""

    submissions: Callable[[], list[BadInput]] = bad_submissions
    http_requests: Callable[[str, int, str], list[RawHttp]] = bad_http_requests
    envelopes: Callable[[Topic, int], list[bytes]] = bad_envelopes


@pytest.fixture
def corpus() -> Corpus:
    return Corpus()
