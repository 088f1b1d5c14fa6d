"""The bodies the case worker API takes and returns, with their OpenAPI examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from flowcase.case.aggregate import Case
from flowcase.case.chain import ChainReport
from flowcase.case.lifecycle import status_changes_from
from flowcase.events.catalogue.case import CaseOrigin, CaseStatus
from flowcase.events.catalogue.common import Priority

_CASE_ID = "c2a9e1f0-4b3d-5e6f-8a7b-9c0d1e2f3a4b"


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class OpenCase(BaseModel):
    model_config = _examples(
        {
            "title": "Walk-in complaint: payroll lockout",
            "priority": "high",
            "request_type": "access_complaint",
            "context": {"system": "payroll"},
        }
    )

    title: str = Field(min_length=1)
    priority: Priority = Priority.NORMAL
    request_id: UUID | None = Field(default=None, description="The request this case is about.")
    request_type: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)


class CommandResult(BaseModel):
    """What a command left; the `ETag` header repeats `version`."""

    model_config = _examples({"case_id": _CASE_ID, "version": 4, "entry_id": "n-1"})

    case_id: UUID
    version: int = Field(description="The case's version now: send it with the next command.")
    entry_id: str | None = Field(
        default=None, description="The id of the note, task, decision... the command added."
    )


class CaseView(BaseModel):
    """A case as it is now, read from its event-sourced record."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "case_id": _CASE_ID,
                    "version": 3,
                    "status": "investigating",
                    "allowed_status_changes": ["pending"],
                    "title": "access_complaint: Access complaints always need an investigation",
                    "priority": "high",
                    "origin": "escalation",
                    "request_id": "0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69",
                    "request_type": "access_complaint",
                    "reason_code": "rule",
                    "reason": "Access complaints always need an investigation",
                    "step": "escalate-complaint",
                    "requester": "jdoe",
                    "opened_by": None,
                    "opened_at": "2026-11-24T09:15:00Z",
                    "updated_at": "2026-11-24T09:20:00Z",
                    "submitted_at": "2026-11-24T09:14:58Z",
                    "due_at": "2026-11-24T13:14:58Z",
                    "remaining_seconds": 14100.0,
                    "clock_paused_at": None,
                    "team": "it-security",
                    "assignee": "agent-42",
                    "context": {"system": "payroll"},
                    "workflow_history": [],
                    "notes": [],
                    "communications": [],
                    "evidence": [],
                    "tasks": [],
                    "milestones": [],
                    "decisions": [],
                    "overrides": [],
                    "resolutions": [],
                    "audit_gaps": 0,
                    "chain_head": "5e0c…",
                }
            ]
        }
    )

    case_id: UUID
    version: int
    status: CaseStatus
    allowed_status_changes: list[CaseStatus]
    title: str
    priority: Priority
    origin: CaseOrigin
    request_id: UUID | None
    request_type: str | None
    reason_code: str | None
    reason: str | None
    step: str | None
    requester: str | None
    opened_by: str | None
    opened_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = Field(
        description="When the escalated request was submitted: its clock started then."
    )
    due_at: datetime | None = Field(
        description="When the escalated request is promised resolved (its definition's "
        "`resolve_within`): the case works against the same clock."
    )
    remaining_seconds: float | None = Field(
        description="Until `due_at`, as of the answer (negative: past due; held while the clock "
        "is paused; null once resolved or closed)."
    )
    clock_paused_at: datetime | None = Field(
        description="Since when the clock stands still (the case waits on the requester)."
    )
    team: str | None
    assignee: str | None
    context: dict[str, Any]
    workflow_history: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    communications: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    milestones: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    overrides: list[dict[str, Any]]
    resolutions: list[dict[str, Any]]
    audit_gaps: int = Field(description="Decisions, overrides, resolutions recorded as gaps.")
    chain_head: str = Field(description="The audit chain hash of the latest event.")

    @classmethod
    def of(cls, case: Case, now: datetime) -> CaseView:
        def entries(values: Any) -> list[dict[str, Any]]:
            return [vars(entry) for entry in values]

        return cls(
            case_id=case.id,
            version=case.version,
            status=case.status,
            allowed_status_changes=list(status_changes_from(case.status)),
            title=case.title,
            priority=Priority(case.priority),
            origin=CaseOrigin(case.origin),
            request_id=case.request_id,
            request_type=case.request_type,
            reason_code=case.reason_code,
            reason=case.reason,
            step=case.step,
            requester=case.requester,
            opened_by=case.opened_by,
            opened_at=case.created_on,
            updated_at=case.modified_on,
            submitted_at=case.submitted_at,
            due_at=case.due_at,
            remaining_seconds=(
                (case.due_at - (case.clock_paused_at or now)).total_seconds()
                if case.due_at is not None
                and case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED)
                else None
            ),
            clock_paused_at=case.clock_paused_at,
            team=case.team,
            assignee=case.assignee,
            context=case.context,
            workflow_history=case.workflow_history,
            notes=entries(case.notes.values()),
            communications=entries(case.communications.values()),
            evidence=entries(case.evidence.values()),
            tasks=[{**vars(task), "completed": task.completed} for task in case.tasks.values()],
            milestones=entries(case.milestones),
            decisions=entries(case.decisions.values()),
            overrides=entries(case.overrides.values()),
            resolutions=entries(case.resolutions),
            audit_gaps=len(case.audit_gaps),
            chain_head=case.chain_head,
        )


class HistoryEntry(BaseModel):
    version: int
    event_type: str = Field(description="The catalogued type it is published as.")
    occurred_at: datetime
    actor: str | None
    payload: dict[str, Any] = Field(description="The catalogue payload, as published.")


class History(BaseModel):
    model_config = _examples(
        {
            "case_id": _CASE_ID,
            "events": [
                {
                    "version": 2,
                    "event_type": "case.NoteAdded",
                    "occurred_at": "2026-11-24T09:16:00Z",
                    "actor": "agent-42",
                    "payload": {"case_id": _CASE_ID, "note_id": "n-1", "text": "5 failed MFA"},
                }
            ],
        }
    )

    case_id: UUID
    events: list[HistoryEntry]


class ChainBreakView(BaseModel):
    version: int = Field(description="The first version where the chain does not hold.")
    kind: str = Field(
        description="`modified`, `missing` or `reordered`; against the anchor, `missing` (the "
        "latest events deleted) or `rewritten` (every hash links, but not to the anchored one)."
    )
    detail: str


class Verification(BaseModel):
    """The audit chain recomputed from the stored events, and checked against the case's head
    anchored on Kafka when it has one."""

    model_config = _examples(
        {
            "case_id": _CASE_ID,
            "intact": True,
            "verified": 12,
            "head": "5e0c…",
            "broken": None,
            "anchored": 12,
        },
        {
            "case_id": _CASE_ID,
            "intact": False,
            "verified": 2,
            "head": "a91f…",
            "broken": {
                "version": 3,
                "kind": "modified",
                "detail": "the event stored as version 3 does not match its hash",
            },
            "anchored": 11,
        },
    )

    case_id: UUID
    intact: bool
    verified: int = Field(description="Events that verified before the first break.")
    head: str = Field(description="The last hash that verified.")
    broken: ChainBreakView | None
    anchored: int | None = Field(
        description="The version whose hash is anchored on Kafka, which the chain was checked "
        "against (a chain rewritten with every hash recomputed no longer reaches it); null while "
        "the case is not anchored yet: its events rest on the keyless chain alone."
    )

    @classmethod
    def of(cls, report: ChainReport) -> Verification:
        broken = report.broken
        return cls(
            case_id=report.case_id,
            intact=report.intact,
            verified=report.verified,
            head=report.head,
            broken=ChainBreakView(version=broken.version, kind=broken.kind, detail=broken.detail)
            if broken
            else None,
            anchored=report.anchored,
        )


class AuditEntry(BaseModel):
    version: int = Field(description="The version the event is stored at.")
    type: str = Field(description="The event's stored topic (the chain hashes it).")
    state: dict[str, Any] = Field(
        description="The stored state as decoded; empty when the row no longer decodes."
    )
    chain_hash: str | None = Field(description="The hash stored with the event.")
    verified: bool = Field(description="Whether the chain holds up to and including it.")


class AuditView(BaseModel):
    model_config = _examples(
        {
            "case_id": _CASE_ID,
            "verification": {
                "case_id": _CASE_ID,
                "intact": True,
                "verified": 1,
                "head": "5e0c…",
                "broken": None,
            },
            "events": [
                {
                    "version": 1,
                    "type": "flowcase.case.aggregate:Case.CaseOpened",
                    "state": {"actor": "agent-42", "title": "Walk-in complaint"},
                    "chain_hash": "5e0c…",
                    "verified": True,
                }
            ],
        }
    )

    case_id: UUID
    verification: Verification
    events: list[AuditEntry]


class CaseSummary(BaseModel):
    """A row of the case search read model."""

    case_id: UUID
    version: int
    title: str
    status: CaseStatus
    priority: Priority
    origin: CaseOrigin
    request_id: UUID | None
    request_type: str | None
    team: str | None
    assignee: str | None
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    outcome_code: str | None
    sla_due_at: datetime | None = Field(
        description="The earliest due time of the case's open tasks."
    )


class CasePage(BaseModel):
    model_config = _examples(
        {
            "items": [
                {
                    "case_id": _CASE_ID,
                    "version": 5,
                    "title": "Payroll lockout",
                    "status": "investigating",
                    "priority": "high",
                    "origin": "escalation",
                    "request_id": "0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69",
                    "request_type": "access_complaint",
                    "team": "it-security",
                    "assignee": "agent-42",
                    "opened_at": "2026-11-24T09:15:00Z",
                    "updated_at": "2026-11-24T09:40:00Z",
                    "resolved_at": None,
                    "outcome_code": None,
                    "sla_due_at": "2026-11-25T17:00:00Z",
                }
            ],
            "next_cursor": "WyIyMDI2LTExLTI0VDA5OjE1OjAwKzAwOjAwIiwgImMyYTllMWYwIl0",
        }
    )

    items: list[CaseSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
