from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import pytest

from flowcase.devstack.dev_tokens import Tokens
from flowcase.devstack.in_process import eventually
from flowcase.events.catalogue.base import EventPayload
from flowcase.events.catalogue.workflow import DefinitionPublished
from flowcase.events.envelope import Envelope
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.intake.composition import IntakeAssembly, build_service
from flowcase.intake.ports import Reservation, Reserved
from flowcase.intake.settings import IntakeSettings
from flowcase.intake.status import Observation, RequestState, RequestStatus, TimelineEntry
from flowcase.runtime import HttpSettings
from flowcase.runtime.auth import Role
from flowcase.runtime.settings import AuthSettings

# The upstream system the tests submit as (on behalf of the requester each submission names).
CLIENT = "crm-connector"

INVOICE_SCHEMA = {
    "type": "object",
    "required": ["invoice_id", "amount"],
    "properties": {
        "invoice_id": {"type": "string", "minLength": 1},
        "amount": {"type": "number", "exclusiveMinimum": 0},
        "vendor": {"type": "string"},
    },
}


@pytest.fixture
def definition() -> Callable[..., DefinitionPublished]:
    """A definition of `invoice_approval` (or another type) as the workflow publishes it."""

    def make(
        version: int = 1,
        schema: dict[str, Any] | None = None,
        request_type: str = "invoice_approval",
    ) -> DefinitionPublished:
        return DefinitionPublished(
            request_type=request_type,
            process=request_type.replace("_", "-"),
            version=version,
            title=request_type.replace("_", " ").capitalize(),
            request_schema=schema or INVOICE_SCHEMA,
            steps=[{"name": "route-to-team", "kind": "route"}],
        )

    return make


@pytest.fixture
def invoice() -> Callable[..., dict[str, Any]]:
    """A valid submission of the published type, with any field changed."""

    def make(**changes: Any) -> dict[str, Any]:
        return {
            "request_type": "invoice_approval",
            "requester": "ap-clerk-7",
            "priority": "normal",
            "payload": {"invoice_id": "INV-2291", "amount": 1840.5, "vendor": "Acme"},
        } | changes

    return make


@pytest.fixture
async def producer(kafka_settings: KafkaSettings) -> AsyncIterator[EventProducer]:
    async with EventProducer(kafka_settings, client_id="intake-tests") as producer:
        yield producer


@pytest.fixture
def publish(producer: EventProducer) -> Callable[..., Any]:
    """Publish catalogue events as the other services would."""

    async def send(*payloads: EventPayload, **envelope: Any) -> list[Envelope]:
        envelopes = [Envelope.wrap(p, source="tests", **envelope) for p in payloads]
        await producer.publish_all(envelopes)
        return envelopes

    return send


@pytest.fixture
def start_intake(
    kafka_settings: KafkaSettings, database_url: str, auth_settings: AuthSettings, tokens: Tokens
) -> Callable[
    ..., contextlib.AbstractAsyncContextManager[tuple[IntakeAssembly, httpx.AsyncClient]]
]:
    """Build and run intake in this process; yields it with an HTTP client of its app that
    authenticates as the upstream client `CLIENT`."""

    @contextlib.asynccontextmanager
    async def start(
        kafka: KafkaSettings | None = None,
        *,
        ready: bool = True,
        **intake_settings: Any,
    ) -> AsyncIterator[tuple[IntakeAssembly, httpx.AsyncClient]]:
        service = await build_service(
            kafka=kafka or kafka_settings,
            database=DatabaseSettings(url=database_url),
            http=HttpSettings(max_body_bytes=4096),
            intake=IntakeSettings(**intake_settings),
            auth=auth_settings,
        )
        async with (
            service.running(),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.app),
                base_url="http://intake",
                headers=tokens.headers(Role.CLIENT, subject=CLIENT),
            ) as client,
        ):
            if ready:
                await eventually(lambda: client.get("/readyz"), lambda r: r.status_code == 200)
            yield service, client

    return start


@pytest.fixture
def until() -> Callable[..., Any]:
    return eventually


# Fakes of the service layer's ports (`flowcase.intake.ports`), for its fast tests: what a
# decision or a change wrote is kept when its block ends and dropped when it raises, as the
# PostgreSQL adapter's transactions do.


@dataclass
class _Ledger:
    keys: dict[tuple[str, str], tuple[str, UUID]] = field(default_factory=dict)
    submissions: dict[str, tuple[str, UUID]] = field(default_factory=dict)
    positions: set[str] = field(default_factory=set)

    def copy(self) -> _Ledger:
        return _Ledger(dict(self.keys), dict(self.submissions), set(self.positions))


class FakeLedgerEntry:
    def __init__(self, ledger: _Ledger) -> None:
        self._ledger = ledger

    async def claim_records(self, positions: list[str]) -> set[str]:
        new = set(positions) - self._ledger.positions
        self._ledger.positions |= new
        return new

    async def reserve_idempotency_key(
        self, scope: str, key: str, fingerprint: str, request_id: UUID
    ) -> Reserved:
        return _reserve(self._ledger.keys, (scope, key), fingerprint, request_id)

    async def reserve_submission_id(
        self, submission_id: str, fingerprint: str, request_id: UUID, channel: str
    ) -> Reserved:
        return _reserve(self._ledger.submissions, submission_id, fingerprint, request_id)


def _reserve(
    held: dict[Any, tuple[str, UUID]], name: Any, fingerprint: str, request_id: UUID
) -> Reserved:
    if name not in held:
        held[name] = (fingerprint, request_id)
        return Reserved(Reservation.NEW, request_id)
    stored_fingerprint, stored_request = held[name]
    same = stored_fingerprint == fingerprint
    return Reserved(Reservation.REPLAY if same else Reservation.CONFLICT, stored_request)


class FakeSubmissionLedger:
    def __init__(self) -> None:
        self.committed = _Ledger()
        self.failure: BaseException | None = None
        """Raised by the next decision as it starts, as a database that does not answer."""

    @asynccontextmanager
    async def decision(self) -> AsyncIterator[FakeLedgerEntry]:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        working = self.committed.copy()
        yield FakeLedgerEntry(working)
        self.committed = working


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.failure: BaseException | None = None
        """Raised by the next publish, as a broker that does not store it."""

    async def publish(self, envelope: Envelope) -> None:
        await self.publish_all([envelope])

    async def publish_all(self, envelopes: Sequence[Envelope]) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        self.published += envelopes


@dataclass
class _Status:
    states: dict[UUID, RequestState] = field(default_factory=dict)
    timelines: dict[UUID, list[TimelineEntry]] = field(default_factory=dict)
    cases: dict[UUID, UUID] = field(default_factory=dict)

    def copy(self) -> _Status:
        timelines = {request: list(entries) for request, entries in self.timelines.items()}
        return _Status(dict(self.states), timelines, dict(self.cases))


class FakeStatusChange:
    def __init__(self, status: _Status) -> None:
        self._status = status

    async def request_of_case(self, case_id: UUID) -> UUID | None:
        return self._status.cases.get(case_id)

    async def link_case(self, case_id: UUID, request_id: UUID) -> None:
        self._status.cases.setdefault(case_id, request_id)

    async def lock(self, request_ids: Sequence[UUID]) -> None:
        pass  # one change at a time: the fake is used by one task

    async def recorded(self, observed: Sequence[Observation]) -> set[tuple[UUID, UUID]]:
        return {
            (seen.request_id, seen.event_id)
            for seen in observed
            for entry in self._status.timelines.get(seen.request_id, [])
            if entry.event_id == seen.event_id
        }

    async def load(self, request_ids: Sequence[UUID]) -> dict[UUID, RequestState]:
        return {r: self._status.states[r] for r in request_ids if r in self._status.states}

    async def record(self, entries: Sequence[tuple[Observation, RequestState]]) -> None:
        for seen, state in entries:
            self._status.timelines.setdefault(seen.request_id, []).append(
                TimelineEntry(
                    event_id=seen.event_id,
                    event_type=seen.event_type,
                    occurred_at=seen.occurred_at,
                    status=state.status,
                    summary=seen.summary,
                )
            )
            self._status.states[state.request_id] = state


class FakeStatusStore:
    def __init__(self) -> None:
        self.committed = _Status()

    @asynccontextmanager
    async def change(self) -> AsyncIterator[FakeStatusChange]:
        working = self.committed.copy()
        yield FakeStatusChange(working)
        self.committed = working

    async def holds(self, request_id: UUID) -> bool:
        return request_id in self.committed.states

    async def get(self, request_id: UUID) -> tuple[RequestState, list[TimelineEntry]] | None:
        state = self.committed.states.get(request_id)
        if state is None:
            return None
        timeline = sorted(self.committed.timelines[request_id], key=lambda e: e.occurred_at)
        return state, timeline

    async def page(
        self,
        *,
        status: RequestStatus | None,
        request_type: str | None,
        since: datetime | None,
        before: int | None,
        limit: int,
        owner: str | None,
    ) -> list[tuple[int, RequestState]]:
        numbered = list(enumerate(self.committed.states.values(), start=1))
        found = [
            (n, s)
            for n, s in reversed(numbered)
            if (status is None or s.status is status)
            and (request_type is None or s.request_type == request_type)
            and (since is None or (s.submitted_at is not None and s.submitted_at >= since))
            and (before is None or n < before)
            and (owner is None or s.belongs_to(owner))
        ]
        return found[:limit]

    async def reachable(self) -> str | None:
        return None


@pytest.fixture
def fake_ledger() -> FakeSubmissionLedger:
    return FakeSubmissionLedger()


@pytest.fixture
def fake_publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def fake_status_store() -> FakeStatusStore:
    return FakeStatusStore()
