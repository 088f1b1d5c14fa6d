"""The facts governance keeps: the few records its metrics are computed from.

Every fact is keyed by ids found in the event that states it, and every field merges by a rule
that is commutative, associative and idempotent (earliest, latest, or, first-stated-wins). So
folding the same events in any order, any number of times, gives equal facts: a replay from
offset 0, an imported history and live traffic with late or redelivered events all agree.

Each fact type is meant to be one PostgreSQL table whose primary key is the fact's `key`. The
projection adapter upserts a fact by reading the one row under that key (or none) and writing
`row.merge(fact)`; the merge rules are simple enough to write as `INSERT ... ON CONFLICT (key)
DO UPDATE` with LEAST, GREATEST, OR and a row comparison on `(at, event_id)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar
from uuid import UUID

from flowcase.events.catalogue.common import Outcome
from flowcase.events.catalogue.workflow import OverrideKind, StepKind

T = TypeVar("T")


@dataclass(frozen=True)
class First(Generic[T]):
    """A value as first stated: when several events state it, the earliest `(at, event_id)` wins.

    The event id breaks ties between events stated at the same instant, so the winner never
    depends on arrival order. Stored as three columns: the value, `at` and `event_id`.
    """

    value: T
    at: datetime
    event_id: UUID

    def merge(self, other: First[T] | None) -> First[T]:
        if other is None or (self.at, self.event_id) <= (other.at, other.event_id):
            return self
        return other


@dataclass(frozen=True)
class Last(Generic[T]):
    """A value as last stated: the latest `(at, event_id)` wins (stored like `First`)."""

    value: T
    at: datetime
    event_id: UUID

    def merge(self, other: Last[T] | None) -> Last[T]:
        if other is None or (self.at, self.event_id) >= (other.at, other.event_id):
            return self
        return other


def _first(a: First[T] | None, b: First[T] | None) -> First[T] | None:
    return b if a is None else a.merge(b)


def _last(a: Last[T] | None, b: Last[T] | None) -> Last[T] | None:
    return b if a is None else a.merge(b)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True)
class RequestFact:
    """One accepted request. Table `requests`, key `request_id`.

    Merge: `request_type`, `outcome` and `submission_id` (the id the source system knew the
    request by: the upstream submission id, or an imported log's own request id)
    first-stated-wins; `definition_version` last-stated-wins (the version the request ran on
    last: a migrated instance's new one, so what happens after a migration counts under the
    version it happened on), and so is `due_at` (the request's promise, from `resolve_within`,
    moved on by a case's paused clock); `submitted_at` and `escalated_at` earliest. A request
    counts in volume only once its `submitted_at` is known (from `intake.RequestSubmitted`);
    overrides and step executions are separate facts joined on `request_id`, so no counter here
    can be double-incremented by a redelivery.
    """

    request_id: UUID
    request_type: First[str] | None = None
    submitted_at: datetime | None = None
    definition_version: Last[int] | None = None
    escalated_at: datetime | None = None
    outcome: First[Outcome] | None = None
    submission_id: First[str] | None = None
    due_at: Last[datetime] | None = None

    @property
    def key(self) -> UUID:
        return self.request_id

    @property
    def process_type(self) -> str | None:
        return self.request_type.value if self.request_type else None

    @property
    def escalated(self) -> bool:
        # A resolved-by-case outcome proves the escalation even if its own event is missing.
        return self.escalated_at is not None or (
            self.outcome is not None and self.outcome.value is Outcome.RESOLVED_BY_CASE
        )

    def merge(self, other: RequestFact) -> RequestFact:
        return replace(
            self,
            request_type=_first(self.request_type, other.request_type),
            submitted_at=_earliest(self.submitted_at, other.submitted_at),
            definition_version=_last(self.definition_version, other.definition_version),
            escalated_at=_earliest(self.escalated_at, other.escalated_at),
            outcome=_first(self.outcome, other.outcome),
            submission_id=_first(self.submission_id, other.submission_id),
            due_at=_last(self.due_at, other.due_at),
        )


@dataclass(frozen=True)
class StepFact:
    """One step of one request's instance. Table `step_executions`, key `(request_id, step)`.

    `entry.at` is when the step was first entered and `entry.value` the SLA due time stated on
    that entry; a step entered again (a retry) keeps its first entry and its latest completion,
    so its wait is the whole time the request sat at that step. Merge: `kind` and `entry`
    first-stated-wins, `completed_at` latest, `sla_breached` or.
    """

    request_id: UUID
    step: str
    kind: First[StepKind] | None = None
    entry: First[datetime | None] | None = None
    completed_at: datetime | None = None
    sla_breached: bool = False

    @property
    def key(self) -> tuple[UUID, str]:
        return (self.request_id, self.step)

    @property
    def entered_at(self) -> datetime | None:
        return self.entry.at if self.entry else None

    @property
    def sla_due_at(self) -> datetime | None:
        return self.entry.value if self.entry else None

    def merge(self, other: StepFact) -> StepFact:
        return replace(
            self,
            kind=_first(self.kind, other.kind),
            entry=_first(self.entry, other.entry),
            completed_at=_latest(self.completed_at, other.completed_at),
            sla_breached=self.sla_breached or other.sla_breached,
        )


@dataclass(frozen=True)
class OverrideFact:
    """One manual override of a workflow's defined path. Table `overrides`, key `override_id`.

    The override's own id, not the event's, is the key: the same override redelivered or
    re-published under another event id is one override. Immutable, so merging two rows under
    one key keeps the stored one.
    """

    override_id: UUID
    request_id: UUID
    at: datetime
    kind: OverrideKind
    step: str | None
    rule: str | None
    definition_version: int

    @property
    def key(self) -> UUID:
        return self.override_id

    def merge(self, other: OverrideFact) -> OverrideFact:
        return self


class AuditKind(StrEnum):
    DECISION = "decision"
    OVERRIDE = "override"
    RESOLUTION = "resolution"


class Missing(StrEnum):
    """What an audit record lacks, making it an audit-trail gap."""

    ACTOR = "actor"
    RATIONALE = "rationale"
    RELIED_ON = "relied_on"
    ACKNOWLEDGED_GAP = "gap_acknowledged"


@dataclass(frozen=True)
class AuditRecord:
    """A decision, override or resolution as recorded. Table `audit_records`, key `record_id`.

    `record_id` names the record by the ids of the event (`case/<case id>/decision/<decision
    id>`, `request/<request id>/override/<override id>`, `request/<request id>/approval/<step>`,
    ...), so it is the id an ops leader follows to the offending record. A record is stated once;
    should two events state one id, the whole record is first-stated-wins.
    """

    record_id: str
    kind: AuditKind
    at: datetime
    event_id: UUID
    actor: str | None
    rationale: str | None
    relied_on: tuple[str, ...]
    gap_acknowledged: bool
    case_id: UUID | None = None
    request_id: UUID | None = None

    @property
    def key(self) -> str:
        return self.record_id

    @property
    def missing(self) -> tuple[Missing, ...]:
        lacks = []
        if not (self.actor or "").strip():
            lacks.append(Missing.ACTOR)
        if not (self.rationale or "").strip():
            lacks.append(Missing.RATIONALE)
        if not self.relied_on:
            lacks.append(Missing.RELIED_ON)
        if self.gap_acknowledged:
            lacks.append(Missing.ACKNOWLEDGED_GAP)
        return tuple(lacks)

    def merge(self, other: AuditRecord) -> AuditRecord:
        return self if (self.at, self.event_id) <= (other.at, other.event_id) else other


@dataclass(frozen=True)
class CaseFact:
    """One case. Table `cases`, key `case_id`.

    Merge: `request_id`, `request_type` and `source_id` (the case's id in the system it came
    from) first-stated-wins, `opened_at` and `resolved_at` earliest (resolution is terminal in
    the contract, so the first one is the one).
    """

    case_id: UUID
    request_id: First[UUID] | None = None
    request_type: First[str] | None = None
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    source_id: First[str] | None = None

    @property
    def key(self) -> UUID:
        return self.case_id

    def merge(self, other: CaseFact) -> CaseFact:
        return replace(
            self,
            request_id=_first(self.request_id, other.request_id),
            request_type=_first(self.request_type, other.request_type),
            opened_at=_earliest(self.opened_at, other.opened_at),
            resolved_at=_earliest(self.resolved_at, other.resolved_at),
            source_id=_first(self.source_id, other.source_id),
        )


Fact = RequestFact | StepFact | OverrideFact | AuditRecord | CaseFact

F = TypeVar("F", RequestFact, StepFact, OverrideFact, AuditRecord, CaseFact)


def _upsert(table: dict, fact: F) -> None:
    stored = table.get(fact.key)
    table[fact.key] = fact if stored is None else stored.merge(fact)


@dataclass
class Facts:
    """All facts, one dict per table keyed as the tables are: the in-memory twin of the store."""

    requests: dict[UUID, RequestFact] = field(default_factory=dict)
    steps: dict[tuple[UUID, str], StepFact] = field(default_factory=dict)
    overrides: dict[UUID, OverrideFact] = field(default_factory=dict)
    audit: dict[str, AuditRecord] = field(default_factory=dict)
    cases: dict[UUID, CaseFact] = field(default_factory=dict)

    def merge(self, fact: Fact) -> None:
        match fact:
            case RequestFact():
                _upsert(self.requests, fact)
            case StepFact():
                _upsert(self.steps, fact)
            case OverrideFact():
                _upsert(self.overrides, fact)
            case AuditRecord():
                _upsert(self.audit, fact)
            case CaseFact():
                _upsert(self.cases, fact)
