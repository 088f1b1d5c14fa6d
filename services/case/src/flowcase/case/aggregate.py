"""The case aggregate: the record of everything that happened to work that could not be scripted.

Each command checks its rules, then triggers one event; the events' `apply` methods only change
state, so replaying a history never re-judges it against rules that may since have changed.
Every event carries who acted (`actor`) and the next link of the case's audit chain
(`chain_hash`, see `flowcase.case.chain`). Event names and fields are those of the catalogue's
case payloads (`flowcase.events.catalogue.case`), the case id being the originator id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.utils import get_topic

from flowcase.case import lifecycle
from flowcase.case.chain import GENESIS, canonical_form, link
from flowcase.case.entries import (
    Communication,
    Decision,
    Evidence,
    Milestone,
    Note,
    Override,
    Resolution,
    Task,
)
from flowcase.case.errors import (
    CaseClosed,
    ClockConflict,
    InvalidField,
    MissingJustification,
    TaskAlreadyCompleted,
    UnknownReference,
)
from flowcase.events.catalogue.case import CaseOrigin, CaseStatus, Direction
from flowcase.events.catalogue.common import Priority
from flowcase.events.catalogue.workflow import EscalatedToCase

# Fixed forever: the case id of an escalated request is derived from it, so every delivery of
# the same escalation names the same case and the event store refuses a second opening.
CASE_ID_NAMESPACE = UUID("5d0c7a3e-9b14-4f6e-8c2a-71e3b9d04f58")

_SHA256 = re.compile(r"[0-9a-f]{64}")

E = TypeVar("E", bound=StrEnum)


def case_id_for_request(request_id: UUID) -> UUID:
    return uuid5(CASE_ID_NAMESPACE, str(request_id))


class Case(Aggregate):
    """One case. Open it with `open_from_escalation` or `open_manually`, never `Case(...)`."""

    class Event(Aggregate.Event):
        actor: str | None
        # The case's request, on every event, so each published envelope carries its
        # correlation id without a lookup (None for a case opened without a request).
        request_id: UUID | None
        chain_hash: str

        # Any: the opening's and the later events' library signatures differ.
        def mutate(self, aggregate: Any) -> Any:
            case = super().mutate(aggregate)
            assert case is not None
            case.chain_head = self.chain_hash
            return case

    class CaseOpened(Event, Aggregate.Created):
        request_type: str | None
        origin: str
        reason_code: str | None
        reason: str | None
        step: str | None
        requester: str | None
        title: str
        priority: str
        context: dict[str, Any]
        workflow_history: list[dict[str, Any]]
        source_id: str | None
        submitted_at: datetime | None
        due_at: datetime | None

    # For a case restored from a snapshot taken before the request's clock was kept.
    submitted_at: datetime | None = None
    due_at: datetime | None = None
    promise_broken_at: datetime | None = None
    clock_paused_at: datetime | None = None

    def __init__(
        self,
        *,
        request_id: UUID | None,
        request_type: str | None,
        origin: str,
        reason_code: str | None,
        reason: str | None,
        step: str | None,
        requester: str | None,
        title: str,
        priority: str,
        context: dict[str, Any],
        workflow_history: list[dict[str, Any]],
        actor: str | None,
        # Absent from the openings stored before they existed, which replay without them.
        source_id: str | None = None,
        submitted_at: datetime | None = None,
        due_at: datetime | None = None,
    ) -> None:
        self.request_id = request_id
        self.request_type = request_type
        self.origin = origin
        self.reason_code = reason_code
        self.reason = reason
        self.step = step
        self.requester = requester
        self.title = title
        self.priority = priority
        self.context = context
        self.workflow_history = workflow_history
        self.source_id = source_id
        self.submitted_at = submitted_at
        self.due_at = due_at
        """The escalated request's promise: the case works against the same clock."""
        self.promise_broken_at: datetime | None = None
        self.clock_paused_at: datetime | None = None
        """While the requester is waited on, the request's clock stands still."""
        self.opened_by = actor
        self.team: str | None = None
        self.assignee: str | None = None
        # The value, not the enum member, so a snapshot decodes to the state a replay builds.
        self._status: str = CaseStatus.OPEN.value
        self.notes: dict[str, Note] = {}
        self.communications: dict[str, Communication] = {}
        self.evidence: dict[str, Evidence] = {}
        self.tasks: dict[str, Task] = {}
        self.milestones: list[Milestone] = []
        self.decisions: dict[str, Decision] = {}
        self.overrides: dict[str, Override] = {}
        self.resolutions: list[Resolution] = []
        # Each event moves the head to its own hash as it is applied (Event.mutate).
        self.chain_head = GENESIS

    @classmethod
    def open_from_escalation(cls, escalation: EscalatedToCase) -> Case:
        """Open the case of an escalated request, with the request's story as its context.

        The workflow service acted, not a person, so the opening has no actor.
        """
        return cls._open(
            case_id_for_request(escalation.request_id),
            actor=None,
            request_id=escalation.request_id,
            request_type=escalation.request_type,
            origin=CaseOrigin.ESCALATION.value,
            reason_code=escalation.reason_code.value,
            reason=escalation.reason,
            step=escalation.step,
            requester=escalation.requester,
            title=f"{escalation.request_type}: {escalation.reason}",
            priority=escalation.priority.value,
            context=dict(escalation.intake_payload),
            workflow_history=[step.model_dump(mode="json") for step in escalation.history],
            source_id=None,
            submitted_at=escalation.submitted_at,
            due_at=escalation.due_at,
        )

    @classmethod
    def open_manually(
        cls,
        title: str,
        *,
        actor: str,
        priority: Priority | str = Priority.NORMAL,
        request_id: UUID | None = None,
        request_type: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> Case:
        _require_text("actor", actor)
        _require_text("title", title)
        return cls._open(
            uuid4(),
            actor=actor,
            request_id=request_id,
            request_type=request_type,
            origin=CaseOrigin.MANUAL.value,
            reason_code=None,
            reason=None,
            step=None,
            requester=None,
            title=title,
            priority=_member(Priority, "priority", priority).value,
            context=dict(context or {}),
            workflow_history=[],
            source_id=None,
            submitted_at=None,
            due_at=None,
        )

    @classmethod
    def _open(cls, case_id: UUID, *, actor: str | None, **fields: Any) -> Case:
        # The library adds the aggregate's topic to the stored opening; the hash covers it too.
        fields["originator_topic"] = get_topic(cls)
        return cls._create(
            cls.CaseOpened,
            id=case_id,
            **_chained(
                cls.CaseOpened,
                case_id=case_id,
                version=cls.INITIAL_VERSION,
                previous_hash=GENESIS,
                actor=actor,
                fields=fields,
            ),
        )

    @property
    def status(self) -> CaseStatus:
        return CaseStatus(self._status)

    @property
    def audit_gaps(self) -> list[Decision | Override | Resolution]:
        """Decisions, overrides and resolutions recorded without their full justification."""
        justified: list[Decision | Override | Resolution] = [
            *self.decisions.values(),
            *self.overrides.values(),
            *self.resolutions,
        ]
        return [record for record in justified if record.gap_acknowledged]

    # Commands, each with the event it triggers.

    def assign(self, team: str, assignee: str | None = None, *, actor: str) -> None:
        self._check_writable(actor)
        _require_text("team", team)
        self._trigger(self.CaseAssigned, actor=actor, team=team, assignee=assignee)

    class CaseAssigned(Event):
        team: str
        assignee: str | None

        def apply(self, case: Case) -> None:
            case.team = self.team
            case.assignee = self.assignee

    def claim(self, *, actor: str) -> None:
        self._check_writable(actor)
        self._trigger(self.CaseClaimed, actor=actor, assignee=actor)

    class CaseClaimed(Event):
        assignee: str

        def apply(self, case: Case) -> None:
            case.assignee = self.assignee

    def add_note(self, text: str, *, actor: str) -> str:
        self._check_writable(actor)
        _require_text("text", text)
        note_id = _next_id("n", self.notes)
        self._trigger(self.NoteAdded, actor=actor, note_id=note_id, text=text)
        return note_id

    class NoteAdded(Event):
        note_id: str
        text: str

        def apply(self, case: Case) -> None:
            case.notes[self.note_id] = Note(
                self.note_id, self.text, by=_who(self), at=self.timestamp
            )

    def log_communication(
        self,
        direction: Direction | str,
        channel: str,
        parties: Iterable[str],
        summary: str,
        *,
        actor: str,
    ) -> str:
        self._check_writable(actor)
        _require_text("channel", channel)
        _require_text("summary", summary)
        communication_id = _next_id("m", self.communications)
        self._trigger(
            self.CommunicationLogged,
            actor=actor,
            communication_id=communication_id,
            direction=_member(Direction, "direction", direction).value,
            channel=channel,
            parties=list(parties),
            summary=summary,
        )
        return communication_id

    class CommunicationLogged(Event):
        communication_id: str
        direction: str
        channel: str
        parties: list[str]
        summary: str

        def apply(self, case: Case) -> None:
            case.communications[self.communication_id] = Communication(
                self.communication_id,
                self.direction,
                self.channel,
                list(self.parties),
                self.summary,
                by=_who(self),
                at=self.timestamp,
            )

    def attach_evidence(self, reference: str, sha256: str, *, actor: str) -> str:
        self._check_writable(actor)
        _require_text("reference", reference)
        content_hash = sha256.lower()
        if not _SHA256.fullmatch(content_hash):
            raise InvalidField("sha256", "must be the 64 hex digits of a SHA-256 digest")
        evidence_id = _next_id("e", self.evidence)
        self._trigger(
            self.EvidenceAttached,
            actor=actor,
            evidence_id=evidence_id,
            reference=reference,
            sha256=content_hash,
        )
        return evidence_id

    class EvidenceAttached(Event):
        evidence_id: str
        reference: str
        sha256: str

        def apply(self, case: Case) -> None:
            case.evidence[self.evidence_id] = Evidence(
                self.evidence_id, self.reference, self.sha256, by=_who(self), at=self.timestamp
            )

    def add_task(self, title: str, due_at: datetime | None = None, *, actor: str) -> str:
        self._check_writable(actor)
        _require_text("title", title)
        if due_at is not None and due_at.tzinfo is None:
            raise InvalidField("due_at", "needs a timezone")
        task_id = _next_id("t", self.tasks)
        self._trigger(
            self.TaskAdded,
            actor=actor,
            task_id=task_id,
            title=title,
            due_at=due_at.astimezone(UTC) if due_at else None,
        )
        return task_id

    class TaskAdded(Event):
        task_id: str
        title: str
        due_at: datetime | None

        def apply(self, case: Case) -> None:
            case.tasks[self.task_id] = Task(
                self.task_id,
                self.title,
                self.due_at,
                added_by=_who(self),
                added_at=self.timestamp,
            )

    def complete_task(self, task_id: str, result: str | None = None, *, actor: str) -> None:
        self._check_writable(actor)
        task = self.tasks.get(task_id)
        if task is None:
            raise UnknownReference("task_id", [task_id])
        if task.completed:
            raise TaskAlreadyCompleted(task_id)
        self._trigger(self.TaskCompleted, actor=actor, task_id=task_id, result=result)

    class TaskCompleted(Event):
        task_id: str
        result: str | None

        def apply(self, case: Case) -> None:
            task = case.tasks[self.task_id]
            case.tasks[self.task_id] = Task(
                task.task_id,
                task.title,
                task.due_at,
                added_by=task.added_by,
                added_at=task.added_at,
                completed_by=_who(self),
                completed_at=self.timestamp,
                result=self.result,
            )

    def set_milestone(self, milestone: str, *, actor: str) -> None:
        self._check_writable(actor)
        _require_text("milestone", milestone)
        self._trigger(self.MilestoneSet, actor=actor, milestone=milestone)

    class MilestoneSet(Event):
        milestone: str

        def apply(self, case: Case) -> None:
            case.milestones.append(Milestone(self.milestone, by=_who(self), at=self.timestamp))

    def pause_clock(self, reason: str, *, actor: str) -> None:
        """Stop the request's clock while the case waits on the requester; the reason is kept."""
        self._check_writable(actor)
        _require_text("reason", reason)
        if self.due_at is None:
            raise ClockConflict("the case has no promised time to pause")
        if self.clock_paused_at is not None:
            raise ClockConflict("the clock is paused already")
        if self.status is CaseStatus.RESOLVED:
            raise ClockConflict("the case is resolved: its clock has stopped")
        self._trigger(self.ClockPaused, actor=actor, reason=reason)

    class ClockPaused(Event):
        reason: str

        def apply(self, case: Case) -> None:
            case.clock_paused_at = self.timestamp

    def resume_clock(self, *, actor: str) -> None:
        """Start the clock again: the promised time moves on by as long as it stood still."""
        self._check_writable(actor)
        if self.clock_paused_at is None or self.due_at is None:
            raise ClockConflict("the clock is not paused")
        at = self.ClockResumed.create_timestamp()
        due_at = self.due_at + (at - self.clock_paused_at)
        self._trigger(self.ClockResumed, actor=actor, at=at, due_at=due_at)

    class ClockResumed(Event):
        due_at: datetime

        def apply(self, case: Case) -> None:
            case.clock_paused_at = None
            case.due_at = self.due_at

    def record_broken_promise(self, now: datetime) -> bool:
        """State, once, that the escalated request's promise passed while its case was open;
        whether it was stated now (not for a case without a promise, not yet due, resolved,
        closed, or stated before). The platform acts, not a person: no actor."""
        if (
            self.due_at is None
            or now < self.due_at
            or self.promise_broken_at is not None
            or self.clock_paused_at is not None
            or self.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED)
        ):
            return False
        self._trigger(self.PromiseBroken, actor=None, due_at=self.due_at)
        return True

    class PromiseBroken(Event):
        due_at: datetime

        def apply(self, case: Case) -> None:
            case.promise_broken_at = self.timestamp

    def change_status(self, to_status: CaseStatus | str, *, actor: str) -> None:
        """Move the case along its lifecycle; reopening a closed case is the one change it takes."""
        _require_text("actor", actor)
        target = _member(CaseStatus, "to_status", to_status)
        lifecycle.check_status_change(self.status, target)
        self._trigger(
            self.StatusChanged,
            actor=actor,
            from_status=self.status.value,
            to_status=target.value,
        )

    class StatusChanged(Event):
        from_status: str
        to_status: str

        def apply(self, case: Case) -> None:
            case._status = self.to_status

    def record_decision(
        self,
        decision: str,
        rationale: str | None = None,
        relied_on: Iterable[str] = (),
        *,
        gap_acknowledged: bool = False,
        actor: str,
    ) -> str:
        self._check_writable(actor)
        _require_text("decision", decision)
        justification = self._justification(rationale, relied_on, gap_acknowledged)
        decision_id = _next_id("d", self.decisions)
        self._trigger(
            self.DecisionRecorded,
            actor=actor,
            decision_id=decision_id,
            decision=decision,
            **justification,
        )
        return decision_id

    class DecisionRecorded(Event):
        decision_id: str
        decision: str
        rationale: str | None
        relied_on: list[str]
        gap_acknowledged: bool

        def apply(self, case: Case) -> None:
            case.decisions[self.decision_id] = Decision(
                self.decision_id,
                self.decision,
                self.rationale,
                list(self.relied_on),
                self.gap_acknowledged,
                by=_who(self),
                at=self.timestamp,
            )

    def apply_override(
        self,
        target: str,
        rationale: str | None = None,
        relied_on: Iterable[str] = (),
        *,
        gap_acknowledged: bool = False,
        actor: str,
    ) -> str:
        self._check_writable(actor)
        _require_text("target", target)
        justification = self._justification(rationale, relied_on, gap_acknowledged)
        override_id = _next_id("o", self.overrides)
        self._trigger(
            self.CaseOverrideApplied,
            actor=actor,
            override_id=override_id,
            target=target,
            **justification,
        )
        return override_id

    class CaseOverrideApplied(Event):
        override_id: str
        target: str
        rationale: str | None
        relied_on: list[str]
        gap_acknowledged: bool

        def apply(self, case: Case) -> None:
            case.overrides[self.override_id] = Override(
                self.override_id,
                self.target,
                self.rationale,
                list(self.relied_on),
                self.gap_acknowledged,
                by=_who(self),
                at=self.timestamp,
            )

    def resolve(
        self,
        outcome_code: str,
        rationale: str | None = None,
        relied_on: Iterable[str] = (),
        *,
        gap_acknowledged: bool = False,
        actor: str,
    ) -> None:
        self._check_writable(actor)
        lifecycle.check_resolution(self.status)
        _require_text("outcome_code", outcome_code)
        justification = self._justification(rationale, relied_on, gap_acknowledged)
        self._trigger(
            self.CaseResolved,
            actor=actor,
            outcome_code=outcome_code,
            **justification,
        )

    class CaseResolved(Event):
        outcome_code: str
        rationale: str | None
        relied_on: list[str]
        gap_acknowledged: bool

        def apply(self, case: Case) -> None:
            case._status = CaseStatus.RESOLVED.value
            case.resolutions.append(
                Resolution(
                    self.outcome_code,
                    self.rationale,
                    list(self.relied_on),
                    self.gap_acknowledged,
                    by=_who(self),
                    at=self.timestamp,
                )
            )

    # Rules shared by the commands.

    def _check_writable(self, actor: str) -> None:
        _require_text("actor", actor)
        if self.status is CaseStatus.CLOSED:
            raise CaseClosed(self.id)

    def _justification(
        self, rationale: str | None, relied_on: Iterable[str], gap_acknowledged: bool
    ) -> dict[str, Any]:
        """The justification fields of a decision, override or resolution, if acceptable.

        Ids relied on must be in the case whatever the caller acknowledges; a missing rationale
        or an empty list is accepted only when acknowledged, and is then recorded as the gap.
        """
        cited = list(dict.fromkeys(relied_on))
        citable = {*self.notes, *self.communications, *self.evidence, *self.decisions}
        unknown = [ref for ref in cited if ref not in citable]
        if unknown:
            raise UnknownReference("relied_on", unknown)
        stated = rationale if rationale and rationale.strip() else None
        given = {"rationale": stated, "relied_on": cited}
        missing = [name for name, value in given.items() if not value]
        if missing and not gap_acknowledged:
            raise MissingJustification(missing)
        return {"rationale": stated, "relied_on": cited, "gap_acknowledged": bool(missing)}

    def _trigger(
        self,
        event_class: type[CanMutateAggregate[UUID]],
        *,
        actor: str | None,
        at: datetime | None = None,
        **fields: Any,
    ) -> None:
        self.trigger_event(
            event_class,
            **_chained(
                event_class,
                case_id=self.id,
                version=self.version + 1,
                previous_hash=self.chain_head,
                actor=actor,
                fields={"request_id": self.request_id, **fields},
                at=at,
            ),
        )


def _chained(
    event_class: type[CanMutateAggregate[UUID]],
    *,
    case_id: UUID,
    version: int,
    previous_hash: str,
    actor: str | None,
    fields: dict[str, Any],
    at: datetime | None = None,
) -> dict[str, Any]:
    """The arguments that trigger `event_class` as the next link of the case's chain (at `at`,
    when the event's fields were computed from its time)."""
    timestamp = at or event_class.create_timestamp()
    canonical = canonical_form(
        topic=get_topic(event_class),
        originator_id=case_id,
        version=version,
        timestamp=timestamp,
        actor=actor,
        fields=fields,
    )
    return {
        **fields,
        "actor": actor,
        "timestamp": timestamp,
        "chain_hash": link(previous_hash, canonical),
    }


def _who(event: Case.Event) -> str:
    # Only the opening from an escalation has no actor; every command requires one.
    assert event.actor is not None
    return event.actor


def _next_id(prefix: str, existing: dict[str, Any]) -> str:
    # Entries are never removed, so counting gives ids unique within the case.
    return f"{prefix}-{len(existing) + 1}"


def _require_text(field: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(field, "required")


def _member(enum: type[E], field: str, value: E | str) -> E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidField(field, f"{value!r} is not one of {allowed}") from None
