"""Hand-made event histories: catalogue payloads in envelopes, at explicit event times."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from flowcase.devstack.dev_tokens import Tokens
from flowcase.events import Envelope, EventPayload, Outcome
from flowcase.events.catalogue import case, intake, workflow
from flowcase.events.catalogue.workflow import OverrideKind, StepKind
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.governance.composition import GovernanceAssembly, build_service
from flowcase.governance.repository import FactRepository
from flowcase.governance.settings import GovernanceSettings
from flowcase.runtime.auth import Role
from flowcase.runtime.settings import AuthSettings

# A Monday at 00:00 UTC: day and week windows start here, so times below read as offsets.
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)
# The services' clock in tests: the end of the workload's week ('the last 7 days' hold it).
NOW = MONDAY + timedelta(days=7)


class History:
    """A history in the making; each method appends one event and returns the ids it made."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []

    @staticmethod
    def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
        return MONDAY + timedelta(days=days, hours=hours, minutes=minutes)

    def add(self, payload: EventPayload, at: datetime, *, actor: str | None = None) -> Envelope:
        source = payload.event_type.split(".")[0]
        envelope = Envelope.wrap(payload, source=source, occurred_at=at, actor=actor)
        self.events.append(envelope)
        return envelope

    def submit(self, request_type: str, at: datetime, *, request_id: UUID | None = None) -> UUID:
        request_id = request_id or uuid4()
        self.add(
            intake.RequestSubmitted(
                request_id=request_id,
                request_type=request_type,
                requester="someone",
                priority="normal",
                submitted_at=at,
                channel="http",
                payload={},
            ),
            at,
        )
        return request_id

    def start(
        self,
        request_id: UUID,
        request_type: str,
        at: datetime,
        version: int = 1,
        *,
        due_at: datetime | None = None,
    ) -> None:
        self.add(
            workflow.InstanceStarted(
                request_id=request_id,
                instance_id=uuid4(),
                request_type=request_type,
                process=request_type,
                definition_version=version,
                due_at=due_at,
            ),
            at,
        )

    def enter(
        self,
        request_id: UUID,
        step: str,
        at: datetime,
        *,
        sla_due_at: datetime | None = None,
        kind: StepKind = StepKind.APPROVAL,
    ) -> None:
        self.add(
            workflow.StepEntered(
                request_id=request_id, step=step, kind=kind, sla_due_at=sla_due_at
            ),
            at,
        )

    def complete(
        self, request_id: UUID, step: str, at: datetime, *, kind: StepKind = StepKind.APPROVAL
    ) -> None:
        self.add(
            workflow.StepCompleted(request_id=request_id, step=step, kind=kind, outcome="done"), at
        )

    def breach(self, request_id: UUID, step: str, at: datetime) -> None:
        self.add(
            workflow.SlaBreached(request_id=request_id, step=step, sla_seconds=60, due_at=at), at
        )

    def approve(
        self,
        request_id: UUID,
        step: str,
        at: datetime,
        *,
        actor: str | None,
        rationale: str | None,
        relied_on: tuple[str, ...] = ("approval-policy",),
    ) -> Envelope:
        return self.add(
            workflow.ApprovalDecided(
                request_id=request_id,
                step=step,
                decision="approved",
                rationale=rationale,
                relied_on=list(relied_on),
            ),
            at,
            actor=actor,
        )

    def override(
        self,
        request_id: UUID,
        at: datetime,
        *,
        rule: str | None = None,
        version: int = 1,
        actor: str | None = "supervisor",
        override_id: UUID | None = None,
        relied_on: tuple[str, ...] = ("vendor-record",),
    ) -> Envelope:
        return self.add(
            workflow.OverrideApplied(
                request_id=request_id,
                override_id=override_id or uuid4(),
                relied_on=list(relied_on),
                override=OverrideKind.FORCE_ROUTE,
                step="route",
                rule=rule,
                definition_version=version,
                reason="known vendor",
            ),
            at,
            actor=actor,
        )

    def escalate(self, request_id: UUID, request_type: str, at: datetime, version: int = 1) -> None:
        self.add(
            workflow.EscalatedToCase(
                request_id=request_id,
                request_type=request_type,
                process=request_type,
                definition_version=version,
                reason_code="rule",
                reason="needs a person",
                step="escalate",
                intake_payload={},
                history=[],
            ),
            at,
        )

    def migrate(self, request_id: UUID, step: str, at: datetime, *, to_version: int = 2) -> None:
        self.add(
            workflow.InstanceMigrated(
                request_id=request_id,
                migration_id=UUID(int=1),
                from_version=to_version - 1,
                to_version=to_version,
                step=step,
                to_step=step,
                reason="a corrected definition",
            ),
            at,
            actor="admin",
        )

    def finish(
        self, request_id: UUID, outcome: Outcome, at: datetime, case_id: UUID | None = None
    ) -> None:
        self.add(
            workflow.InstanceCompleted(request_id=request_id, outcome=outcome, case_id=case_id), at
        )

    def open_case(
        self, request_type: str | None, at: datetime, *, request_id: UUID | None = None
    ) -> UUID:
        case_id = uuid4()
        self.add(
            case.CaseOpened(
                case_id=case_id,
                request_id=request_id,
                request_type=request_type,
                origin="escalation" if request_id else "manual",
                title="a case",
            ),
            at,
        )
        return case_id

    def decide(
        self,
        case_id: UUID,
        decision_id: str,
        at: datetime,
        *,
        actor: str | None = "agent",
        rationale: str | None = "because",
        relied_on: tuple[str, ...] = ("n-1",),
        gap_acknowledged: bool = False,
    ) -> None:
        self.add(
            case.DecisionRecorded(
                case_id=case_id,
                decision_id=decision_id,
                decision="do it",
                rationale=rationale,
                relied_on=list(relied_on),
                gap_acknowledged=gap_acknowledged,
            ),
            at,
            actor=actor,
        )

    def case_override(
        self, case_id: UUID, override_id: str, at: datetime, *, actor: str | None = "agent"
    ) -> None:
        self.add(
            case.CaseOverrideApplied(
                case_id=case_id,
                override_id=override_id,
                target="sla",
                rationale="agreed a later date",
                relied_on=["m-1"],
            ),
            at,
            actor=actor,
        )

    def resolve(
        self,
        case_id: UUID,
        at: datetime,
        *,
        actor: str | None = "agent",
        rationale: str | None = "fixed",
        relied_on: tuple[str, ...] = ("d-1",),
    ) -> None:
        self.add(
            case.CaseResolved(
                case_id=case_id,
                outcome_code="fixed",
                rationale=rationale,
                relied_on=list(relied_on),
            ),
            at,
            actor=actor,
        )


@pytest.fixture
def history() -> History:
    return History()


def random_history(seed: int, *, events: int = 400, days: int = 3) -> list[Envelope]:
    """A seeded history of every kind of event governance folds, with ids and instants drawn from
    small pools so that events collide (one request, step or case stated by several events,
    often at the same instant) and arrive out of order."""
    rng = random.Random(seed)
    request_ids = [UUID(int=rng.getrandbits(128)) for _ in range(events // 10)]
    case_ids = [UUID(int=rng.getrandbits(128)) for _ in range(events // 30)]
    types = ["invoice", "access"]
    steps = ["validate", "approve", "provision"]
    instants = [MONDAY + timedelta(hours=h) for h in range(0, 24 * days, 3)]
    texts = [None, "", "because", "per policy"]
    history = History()
    pick = rng.choice
    makers = [
        lambda at: history.add(
            intake.RequestSubmitted(
                request_id=pick(request_ids),
                request_type=pick(types),
                requester="r",
                priority="normal",
                submitted_at=at,
                channel="http",
                payload={},
            ),
            at,
        ),
        lambda at: history.start(
            pick(request_ids),
            pick(types),
            at,
            version=rng.randint(1, 2),
            due_at=pick([None, at + timedelta(hours=6)]),
        ),
        lambda at: history.enter(
            pick(request_ids),
            pick(steps),
            at,
            sla_due_at=pick([None, at + timedelta(hours=2)]),
            kind=pick(list(StepKind)),
        ),
        lambda at: history.complete(pick(request_ids), pick(steps), at),
        lambda at: history.breach(pick(request_ids), pick(steps), at),
        lambda at: history.approve(
            pick(request_ids), pick(steps), at, actor=pick([None, "boss"]), rationale=pick(texts)
        ),
        lambda at: history.override(
            pick(request_ids),
            at,
            rule=pick([None, "amount < 1000", "route"]),
            version=rng.randint(1, 2),
            actor=pick([None, "supervisor"]),
        ),
        lambda at: history.escalate(pick(request_ids), pick(types), at, version=rng.randint(1, 2)),
        lambda at: history.migrate(
            pick(request_ids), pick(steps), at, to_version=rng.randint(2, 3)
        ),
        lambda at: history.finish(
            pick(request_ids), pick(list(Outcome)), at, case_id=pick([None, *case_ids])
        ),
        lambda at: history.add(
            case.CaseOpened(
                case_id=pick(case_ids),
                request_id=pick([None, *request_ids]),
                request_type=pick([None, *types]),
                origin=pick(["escalation", "manual"]),
                title="t",
            ),
            at,
        ),
        lambda at: history.decide(
            pick(case_ids), pick(["d-1", "d-2"]), at, rationale=pick(texts), actor=pick([None, "a"])
        ),
        lambda at: history.case_override(pick(case_ids), "o-1", at),
        lambda at: history.resolve(pick(case_ids), at, rationale=pick(texts)),
    ]
    for _ in range(events):
        pick(makers)(pick(instants))
    # A redelivered event or two, as Kafka's at-least-once delivery makes them.
    history.events += rng.sample(history.events, k=min(10, len(history.events)))
    return history.events


@pytest.fixture
def make_random_history() -> Callable[..., list[Envelope]]:
    return random_history


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database of this test's own (an integration test)."""
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as created:
        yield created


@pytest.fixture
async def repository(pool: asyncpg.Pool) -> FactRepository:
    repository = FactRepository(pool)
    await repository.create_tables()
    return repository


def workload(days: int = 7) -> list[Envelope]:
    """A week of traffic with known shapes, one per recommendation:

    - `invoice-approval`: 8 requests a day, one overridden (rule `amount <= 1000`, v1), one
      approval a day without a rationale (an audit gap), two of eight approvals past their SLA
      (a bottleneck): 12.5% exceptions, **workflow**.
    - `vendor-onboarding`: 6 a day, 2 escalated to a case resolved in 4 hours: 33%, **layered**.
    - `access-request`: 5 a day, 2 escalated, resolution time 2 h rising 25% a day on flat
      volume: 40%, **layered**, with resolution-time **drift**.
    - `incident-triage`: 5 a day, 4 escalated: 80%, **case**.
    """
    history = History()
    ids = random.Random(2026)
    for day in range(days):
        for process, count, escalated in (
            ("invoice-approval", 8, 0),
            ("vendor-onboarding", 6, 2),
            ("access-request", 5, 2),
            ("incident-triage", 5, 4),
        ):
            for i in range(count):
                at = History.at(days=day, hours=9, minutes=10 * i)
                # Ids from a fixed seed: the dashboard's screenshot is the same on every run.
                request_id = history.submit(process, at, request_id=UUID(int=ids.getrandbits(128)))
                # Promised within six hours: the slow approvals and the long cases break it.
                history.start(
                    request_id, process, at + timedelta(seconds=1), due_at=at + timedelta(hours=6)
                )
                entered = at + timedelta(minutes=1)
                history.enter(
                    request_id, "validate", entered, sla_due_at=entered + timedelta(hours=1)
                )
                history.complete(request_id, "validate", entered + timedelta(minutes=5))
                approve_at = entered + timedelta(minutes=6)
                history.enter(
                    request_id, "approve", approve_at, sla_due_at=approve_at + timedelta(hours=4)
                )
                waited = timedelta(hours=5 if i in (1, 3) else 1 + i / 4)
                done = approve_at + waited
                if i < escalated:
                    history.escalate(request_id, process, done)
                    case_id = history.open_case(process, done, request_id=request_id)
                    hours = 4.0 if process != "access-request" else 2 * 1.25**day
                    resolved = done + timedelta(hours=hours)
                    history.decide(case_id, "d-1", resolved - timedelta(minutes=5))
                    history.resolve(case_id, resolved)
                    history.finish(request_id, Outcome.RESOLVED_BY_CASE, resolved, case_id)
                    continue
                history.approve(
                    request_id,
                    "approve",
                    done,
                    actor="approver",
                    rationale=None if process == "invoice-approval" and i == 2 else "in budget",
                )
                history.complete(request_id, "approve", done)
                if process == "invoice-approval" and i == 0:
                    history.override(request_id, done, rule="amount <= 1000", version=1)
                history.finish(request_id, Outcome.COMPLETED, done + timedelta(seconds=1))
    return history.events


@pytest.fixture
def make_workload() -> Callable[..., list[Envelope]]:
    return workload


@pytest.fixture
async def another_database_url(new_database: Callable[[], Awaitable[str]]) -> str:
    """A second fresh database, for a replay beside the live projection."""
    return await new_database()


class RunningService:
    """A governance service built in-process, its projection consuming in a task."""

    def __init__(self, service: GovernanceAssembly, headers: dict[str, str]) -> None:
        self.service = service
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.app),
            base_url="http://governance",
            headers=headers,
        )
        self._task = asyncio.create_task(service.consumer.run())

    def projected(self) -> float:
        """Messages this service's consumer group processed (the event library's counter)."""
        runner = self.service.consumer.runner
        return sum(
            REGISTRY.get_sample_value(
                "flowcase_messages_processed_total", {"topic": topic, "group": runner.group_id}
            )
            or 0.0
            for topic in runner.topics
        )

    async def caught_up(self, count: int, timeout: float = 60) -> None:
        """Wait until `count` events were projected (the consumer reports each one)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.projected() < count:
            if self._task.done():
                self._task.result()
            assert asyncio.get_running_loop().time() < deadline, f"{self.projected()} of {count}"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        self.service.consumer.stop()
        await asyncio.wait_for(self._task, 30)
        await self.http.aclose()
        await self.service.close()


@contextlib.asynccontextmanager
async def _governance_starter(
    auth_settings: AuthSettings, tokens: Tokens
) -> AsyncIterator[Callable[..., Awaitable[RunningService]]]:
    started: list[RunningService] = []

    async def start(
        kafka: KafkaSettings, database_url: str, *, group_id: str = "governance"
    ) -> RunningService:
        service = await build_service(
            kafka,
            DatabaseSettings(url=database_url),
            settings=GovernanceSettings(consumer_group=group_id),
            auth=auth_settings,
            clock=lambda: NOW,
        )
        running = RunningService(service, tokens.headers(Role.OPS_LEADER))
        started.append(running)
        await asyncio.wait_for(service.consumer.runner.started.wait(), 30)
        return running

    try:
        yield start
    finally:
        for running in started:
            await running.close()


@pytest.fixture
async def start_governance(
    auth_settings: AuthSettings, tokens: Tokens
) -> AsyncIterator[Callable[..., Awaitable[RunningService]]]:
    """`await start_governance(kafka_settings, database_url, group_id=...)`: a running service
    whose clock reads `NOW`, closed after the test; its `http` client is an ops leader's."""
    async with _governance_starter(auth_settings, tokens) as start:
        yield start


@pytest.fixture(scope="module")
async def start_governance_module(
    auth_settings: AuthSettings, tokens: Tokens
) -> AsyncIterator[Callable[..., Awaitable[RunningService]]]:
    """`start_governance` for a service shared by a test module, closed after it."""
    async with _governance_starter(auth_settings, tokens) as start:
        yield start
