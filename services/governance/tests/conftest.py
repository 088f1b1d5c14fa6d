"""Hand-made event histories: catalogue payloads in envelopes, at explicit event times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from flowcase.events import Envelope, EventPayload, Outcome
from flowcase.events.catalogue import case, intake, workflow
from flowcase.events.catalogue.workflow import OverrideKind, StepKind

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
