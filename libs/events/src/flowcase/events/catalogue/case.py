"""Case: everything that happened to a case record (keyed by case id), and the anchored heads of
their audit chains (`case.ChainHeadAnchored`, on its own compacted topic).

Decisions, overrides and resolutions carry their rationale and the ids of the notes, evidence or
communications they relied on; one recorded without them is marked `gap_acknowledged` and counts
as an audit-trail gap in governance.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import Field

from flowcase.events.catalogue.base import EventPayload, UtcDatetime, catalogued
from flowcase.events.catalogue.common import Priority
from flowcase.events.catalogue.workflow import EscalationReason, StepRecord
from flowcase.events.topics import Topic

_CASE_ID = "c2a9e1f0-4b3d-5e6f-8a7b-9c0d1e2f3a4b"
_REQUEST_ID = "0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69"


class CaseOrigin(StrEnum):
    ESCALATION = "escalation"
    MANUAL = "manual"


class CaseStatus(StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class _Justified(EventPayload):
    """Fields shared by the records governance audits for gaps."""

    rationale: str | None = None
    relied_on: list[str] = Field(
        default_factory=list, description="Ids of the notes, evidence or communications relied on."
    )
    gap_acknowledged: bool = Field(
        default=False,
        description="Recorded without rationale or without the information relied on, knowingly.",
    )


@catalogued(
    "case.CaseOpened",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    version=3,
    examples=[
        {
            "case_id": _CASE_ID,
            "request_id": _REQUEST_ID,
            "request_type": "access_complaint",
            "origin": "escalation",
            "reason_code": "rule",
            "reason": "Access complaints always need an investigation",
            "step": "escalate-complaint",
            "requester": "jdoe",
            "title": "Access complaint: payroll",
            "priority": "high",
            "context": {"system": "payroll", "complaint": "I was locked out"},
            "workflow_history": [],
            "submitted_at": "2026-11-24T09:15:00Z",
            "due_at": "2026-11-24T13:15:00Z",
        }
    ],
)
class CaseOpened(EventPayload):
    """A case opened, from an escalation or by hand.

    Version 2 added `source_id`, so a consumer that knows only version 1 dead-letters a new
    opening as a newer version instead of refusing its unknown field as malformed; version 3
    `submitted_at` and `due_at`, the request's clock, which goes on in the case."""

    case_id: UUID
    request_id: UUID | None = None
    request_type: str | None = None
    origin: CaseOrigin
    reason_code: EscalationReason | None = None
    reason: str | None = Field(default=None, description="Why the workflow escalated, in words.")
    step: str | None = Field(default=None, description="The workflow step that escalated.")
    requester: str | None = None
    title: str
    priority: Priority = Priority.NORMAL
    context: dict[str, Any] = Field(default_factory=dict, description="The intake payload.")
    workflow_history: list[StepRecord] = Field(default_factory=list)
    source_id: str | None = Field(
        default=None,
        description="The case's own id in the system it came from (an imported history's case "
        "id that is no UUID), so a record can be joined back to that system.",
    )
    submitted_at: UtcDatetime | None = Field(
        default=None, description="When the escalated request was submitted: its clock's start."
    )
    due_at: UtcDatetime | None = Field(
        default=None,
        description="When the escalated request is promised resolved (the workflow's "
        "`resolve_within`): the case works against the same clock.",
    )


@catalogued(
    "case.CaseAssigned",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[{"case_id": _CASE_ID, "team": "it-security", "assignee": "agent-42"}],
)
class CaseAssigned(EventPayload):
    case_id: UUID
    team: str
    assignee: str | None = None


@catalogued(
    "case.CaseClaimed",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[{"case_id": _CASE_ID, "assignee": "agent-42"}],
)
class CaseClaimed(EventPayload):
    case_id: UUID
    assignee: str


@catalogued(
    "case.NoteAdded",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[
        {"case_id": _CASE_ID, "note_id": "n-1", "text": "Lockout followed 5 failed MFA prompts"}
    ],
)
class NoteAdded(EventPayload):
    case_id: UUID
    note_id: str
    text: str


@catalogued(
    "case.CommunicationLogged",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[
        {
            "case_id": _CASE_ID,
            "communication_id": "m-1",
            "direction": "outbound",
            "channel": "email",
            "parties": ["jdoe@example.com"],
            "summary": "Asked when the lockout started",
        }
    ],
)
class CommunicationLogged(EventPayload):
    case_id: UUID
    communication_id: str
    direction: Direction
    channel: str
    parties: list[str]
    summary: str


@catalogued(
    "case.EvidenceAttached",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[
        {
            "case_id": _CASE_ID,
            "evidence_id": "e-1",
            "reference": "s3://evidence/idp-log-2291.json",
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        }
    ],
)
class EvidenceAttached(EventPayload):
    case_id: UUID
    evidence_id: str
    reference: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


@catalogued(
    "case.TaskAdded",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[{"case_id": _CASE_ID, "task_id": "t-1", "title": "Pull IdP logs", "due_at": None}],
)
class TaskAdded(EventPayload):
    case_id: UUID
    task_id: str
    title: str
    due_at: UtcDatetime | None = None


@catalogued(
    "case.TaskCompleted",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[{"case_id": _CASE_ID, "task_id": "t-1", "result": "Logs attached as e-1"}],
)
class TaskCompleted(EventPayload):
    case_id: UUID
    task_id: str
    result: str | None = None


@catalogued(
    "case.MilestoneSet",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[{"case_id": _CASE_ID, "milestone": "root-cause-found"}],
)
class MilestoneSet(EventPayload):
    case_id: UUID
    milestone: str


@catalogued(
    "case.StatusChanged",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[{"case_id": _CASE_ID, "from_status": "open", "to_status": "investigating"}],
)
class StatusChanged(EventPayload):
    case_id: UUID
    from_status: CaseStatus
    to_status: CaseStatus


@catalogued(
    "case.DecisionRecorded",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[
        {
            "case_id": _CASE_ID,
            "decision_id": "d-1",
            "decision": "Restore access after MFA re-enrolment",
            "rationale": "Logs show a faulty token, not an attack",
            "relied_on": ["n-1", "e-1"],
            "gap_acknowledged": False,
        }
    ],
)
class DecisionRecorded(_Justified):
    case_id: UUID
    decision_id: str
    decision: str


@catalogued(
    "case.OverrideApplied",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[
        {
            "case_id": _CASE_ID,
            "override_id": "o-1",
            "target": "sla",
            "rationale": "Requester is travelling; agreed a later date",
            "relied_on": ["m-1"],
            "gap_acknowledged": False,
        }
    ],
)
class CaseOverrideApplied(_Justified):
    case_id: UUID
    override_id: str
    target: str = Field(description="What the override set aside (a rule, the SLA, a step).")


@catalogued(
    "case.ClockPaused",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[
        {
            "case_id": _CASE_ID,
            "request_id": _REQUEST_ID,
            "reason": "Waiting for the employee's written statement",
        }
    ],
)
class ClockPaused(EventPayload):
    """The escalated request's clock stands still while the case waits on the requester (the
    envelope's actor says who stopped it, the reason why)."""

    case_id: UUID
    request_id: UUID | None = None
    reason: str = Field(min_length=1)


@catalogued(
    "case.ClockResumed",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[{"case_id": _CASE_ID, "request_id": _REQUEST_ID, "due_at": "2026-11-25T10:15:00Z"}],
)
class ClockResumed(EventPayload):
    """The clock runs again; the request's promised time moved on by as long as it stood
    still."""

    case_id: UUID
    request_id: UUID | None = None
    due_at: UtcDatetime = Field(description="The request's promised time from now on.")


@catalogued(
    "case.PromiseBroken",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[{"case_id": _CASE_ID, "request_id": _REQUEST_ID, "due_at": "2026-11-24T13:15:00Z"}],
)
class PromiseBroken(EventPayload):
    """The escalated request's promise (`CaseOpened.due_at`) passed while its case was open.
    Stated once per case, by the case service's watch over its open cases' due times."""

    case_id: UUID
    request_id: UUID | None = None
    due_at: UtcDatetime


@catalogued(
    "case.CaseResolved",
    topic=Topic.CASE_EVENTS,
    key="case_id",
    examples=[
        {
            "case_id": _CASE_ID,
            "request_id": _REQUEST_ID,
            "outcome_code": "access_restored",
            "rationale": "Token replaced; requester confirmed access",
            "relied_on": ["d-1", "m-1"],
            "gap_acknowledged": False,
        }
    ],
)
class CaseResolved(_Justified):
    """The case is resolved; the workflow service closes the request as `resolved_by_case`."""

    case_id: UUID
    request_id: UUID | None = None
    outcome_code: str


@catalogued(
    "case.ChainHeadAnchored",
    topic=Topic.CASE_CHAIN_HEADS,
    key="case_id",
    examples=[
        {
            "case_id": _CASE_ID,
            "version": 4,
            "chain_hash": "5e0c7f2a9b1d4e6f8a0c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f",
        }
    ],
)
class ChainHeadAnchored(EventPayload):
    """The head of a case's audit chain, kept outside the case database: the stored chain must
    still carry this hash at this version, so a chain rewritten there is caught."""

    case_id: UUID
    version: int = Field(ge=1, description="The case version whose chain hash this is.")
    chain_hash: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="The stored `chain_hash` of that version."
    )
