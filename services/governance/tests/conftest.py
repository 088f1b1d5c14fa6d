"""Hand-made event histories: catalogue payloads in envelopes, at explicit event times."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from flowcase.events import Envelope, EventPayload, Outcome
from flowcase.events.catalogue import case, intake, workflow
from flowcase.events.catalogue.workflow import OverrideKind, StepKind
from flowcase.governance.repository import FactRepository

# A Monday at 00:00 UTC: day and week windows start here, so times below read as offsets.
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


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

    def submit(self, request_type: str, at: datetime) -> UUID:
        request_id = uuid4()
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

    def start(self, request_id: UUID, request_type: str, at: datetime, version: int = 1) -> None:
        self.add(
            workflow.InstanceStarted(
                request_id=request_id,
                instance_id=uuid4(),
                request_type=request_type,
                process=request_type,
                definition_version=version,
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
        lambda at: history.start(pick(request_ids), pick(types), at, version=rng.randint(1, 2)),
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
