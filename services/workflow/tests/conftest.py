from __future__ import annotations

import asyncio
import contextlib
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from flowcase.devstack.dev_tokens import Tokens
from flowcase.devstack.in_process import served
from flowcase.events import Envelope, Topic, decode_all
from flowcase.events.catalogue import Priority
from flowcase.events.catalogue.intake import Channel, RequestSubmitted
from flowcase.events.catalogue.workflow import InstanceEvent
from flowcase.events.kafka import EventProducer, partitions_of, seek_to_start
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.workflow.composition import WorkflowAssembly, build_service
from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.definition_files import load_folder, parse_definition, shipped_folder
from flowcase.workflow.effects import Effect
from flowcase.workflow.engine import Decision, decide
from flowcase.workflow.settings import WorkflowSettings
from flowcase.workflow.state import InstanceState, Turn
from flowcase.workflow.triggers import Submit, Trigger

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
REQUEST_ID = UUID("0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69")


class Journey:
    """Drives one instance through the engine, keeping its state, events and a clock."""

    def __init__(self, definition: ProcessDefinition, request_id: UUID = REQUEST_ID) -> None:
        self.definition = definition
        self.request_id = request_id
        self.state: InstanceState | None = None
        self.events: list[InstanceEvent] = []
        self.turns: list[Turn] = []
        self.clock = T0
        self.last = Decision(Turn(T0, ()), (), None)

    def submit(self, payload: dict[str, Any], **fields: Any) -> Decision:
        fields.setdefault("requester", "jdoe@example.com")
        return self.send(
            Submit(
                request_id=self.request_id,
                request_type=self.definition.request_type,
                payload=payload,
                **fields,
            )
        )

    def send(self, trigger: Trigger, after: timedelta = timedelta(0)) -> Decision:
        self.clock += after
        self.last = decide(self.definition, self.state, trigger, self.clock)
        self.state = self.last.state
        self.events += self.last.turn.events
        if self.last.turn.events:
            self.turns.append(self.last.turn)
        return self.last

    @property
    def now(self) -> InstanceState:
        assert self.state is not None
        return self.state

    def effects(self, kind: type[Effect]) -> list[Any]:
        return [e for e in self.last.effects if isinstance(e, kind)]

    def of(self, kind: type[InstanceEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def outcomes(self) -> list[tuple[str, str]]:
        """(step, outcome) of every completed step, in order."""
        return [(r.step, r.outcome or "") for r in self.now.history if r.completed_at]


@pytest.fixture(scope="session")
def shipped() -> dict[str, ProcessDefinition]:
    return {d.request_type: d for d in load_folder(shipped_folder())}


def _definition(
    steps: str, *, schema: str = "{type: object}", version: int = 1
) -> ProcessDefinition:
    """A definition of request type `test_type` with the given YAML `steps` list."""
    text = f"name: test-process\nversion: {version}\nrequest_type: test_type\ntitle: Test\n"
    text += f"request_schema: {schema}\nsteps:\n" + textwrap.indent(textwrap.dedent(steps), "  ")
    return parse_definition(text, "test.yaml")


@pytest.fixture
def definition() -> Callable[..., ProcessDefinition]:
    return _definition


@pytest.fixture
def journey() -> type[Journey]:
    return Journey


# Integration: the service against the real broker and database -----------------------------

CONNECTORS = (
    "identity-provider",
    "erp",
    "okta",
    "google-workspace",
    "slack",
    "jira",
    "github",
    "calendar",
    "email",
    "pager",
)
REFUSED_ACCOUNT = "refuse-me"
SLOW_ONCE_ACCOUNT = "slow-once"


class FarSide:
    """The systems the connectors call: a real HTTP server on 127.0.0.1 that records each call,
    refuses (422, not retried) any action for the account `refuse-me`, and hangs on the first
    action for the account `slow-once` (a call the service is stopped in the middle of)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.url = ""
        self.hanging = asyncio.Event()
        self.closing = asyncio.Event()
        app = FastAPI()

        @app.post("/hooks/{name}")
        async def hook(name: str, request: Request) -> JSONResponse:
            body = await request.json()
            key = request.headers.get("Idempotency-Key")
            first = all(c["idempotency_key"] != key for c in self.calls)
            self.calls.append({"connector": name, "idempotency_key": key, **body})
            account = body.get("input", {}).get("account")
            if account == REFUSED_ACCOUNT:
                return JSONResponse({"error": "the account is locked"}, status_code=422)
            if account == SLOW_ONCE_ACCOUNT and first:
                self.hanging.set()
                await self.closing.wait()
            return JSONResponse({"done": True, "connector": name, "operation": body["operation"]})

        self.app = app

    def connectors(self) -> dict[str, str]:
        return {name: f"{self.url}/hooks/{name}" for name in CONNECTORS}

    def calls_for(self, request_id: UUID) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["request_id"] == str(request_id)]


@pytest.fixture(scope="module")
async def far_side() -> AsyncIterator[FarSide]:
    side = FarSide()
    async with served(side.app) as url:
        side.url = url
        try:
            yield side
        finally:
            side.closing.set()  # a call left hanging would hold the server's shutdown


@pytest.fixture(scope="module")
def module_kafka(module_kafka_settings: KafkaSettings) -> KafkaSettings:
    """Topics of this module's own (one service serves a whole module)."""
    return module_kafka_settings


@pytest.fixture(scope="module")
def module_database(module_database_url: str) -> DatabaseSettings:
    """A database of this module's own, dropped afterwards."""
    return DatabaseSettings(url=module_database_url)


class SettableClock:
    """The service's clock, ahead of real time by `offset` (timers due in days, in a test)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class WorkflowEvents:
    """Everything on the workflow events topic, read in the background from the beginning."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.topic = settings.topic(Topic.WORKFLOW_EVENTS)
        self._consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.client_options())
        self.envelopes: list[Envelope] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        tps = await partitions_of(self._consumer, self.topic)
        self._consumer.assign(tps)
        await seek_to_start(self._consumer, tps)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            for records in batch.values():
                self.envelopes.extend(e for r in records for e in decode_all(r.value))
                self._arrived.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    def of(self, request_id: UUID) -> list[Envelope]:
        return [e for e in self.envelopes if e.request_id == request_id]

    def types(self, request_id: UUID) -> list[str]:
        return [e.event_type for e in self.of(request_id)]

    async def wait_for(self, request_id: UUID, event_type: str, *, timeout: float = 20) -> Any:
        """The payload of the first `event_type` of the request, once it is on the topic."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [e for e in self.of(request_id) if e.event_type == event_type]
            if found:
                return found[0].payload
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"no {event_type} for {request_id}: {self.types(request_id)}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def outcome(self, request_id: UUID, *, timeout: float = 20) -> Any:
        """The terminal event's payload: `InstanceCompleted` or `EscalatedToCase`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for envelope in self.of(request_id):
                if envelope.event_type in (
                    "workflow.InstanceCompleted",
                    "workflow.EscalatedToCase",
                ):
                    return envelope.payload
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{request_id} did not finish: {self.types(request_id)}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), 0.5)


@pytest.fixture(scope="module")
async def workflow_events(module_kafka: KafkaSettings) -> AsyncIterator[WorkflowEvents]:
    events = WorkflowEvents(module_kafka)
    await events.start()
    yield events
    await events.stop()


class Intake:
    """Publishes `RequestSubmitted` as intake would."""

    def __init__(self, producer: EventProducer) -> None:
        self.producer = producer

    def envelope(
        self, request_type: str, payload: dict[str, Any], request_id: UUID | None = None
    ) -> Envelope:
        request_id = request_id or uuid.uuid4()
        return Envelope.wrap(
            RequestSubmitted(
                request_id=request_id,
                request_type=request_type,
                requester="jdoe@example.com",
                priority=Priority.NORMAL,
                submitted_at=datetime.now(UTC),
                channel=Channel.HTTP,
                payload=payload,
            ),
            source="intake",
            request_id=request_id,
        )

    async def submit(self, request_type: str, payload: dict[str, Any]) -> UUID:
        envelope = self.envelope(request_type, payload)
        await self.producer.publish(envelope)
        assert envelope.request_id is not None
        return envelope.request_id


@pytest.fixture(scope="module")
async def intake(module_kafka: KafkaSettings) -> AsyncIterator[Intake]:
    async with EventProducer(module_kafka, client_id="test-intake") as producer:
        yield Intake(producer)


@pytest.fixture
def settable_clock() -> SettableClock:
    return SettableClock()


@pytest.fixture(scope="module")
async def service(
    module_kafka: KafkaSettings, module_database: DatabaseSettings, far_side: Any
) -> AsyncIterator[WorkflowAssembly]:
    """The running service of a test module, on its own topics and database."""
    settings = WorkflowSettings(connectors=far_side.connectors(), timer_poll_seconds=0.2)
    built = await build_service(module_kafka, module_database, settings)
    async with built.running():
        yield built


@pytest.fixture(scope="module")
async def api(service: WorkflowAssembly, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    """Its API as an admin; a decision or override sends a supervisor's token of its own."""
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://workflow", headers=tokens.admin()
    ) as client:
        yield client
