"""The activity vocabulary of imported and exported event logs, and its mapping to the catalogue.

A CSV row or an OCEL 2.0 event is a `LogEntry`: an activity (one catalogue event each, named
as the event in snake case), its instant, the request and case it concerns, and the optional
fields the event carries. `envelope_of` maps an entry to exactly one catalogue envelope, and
deterministically: ids that are not UUIDs become name-based UUIDs, and the event id is derived
from the event's content, so importing the same log twice states the same events twice (which
the projection merges into the same facts) and two identical rows are one event.

`entries_of` goes the other way for the export: it reconstructs, from the facts governance
holds, the entries that state those facts again (see the README for what a fact cannot tell).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from pydantic import ValidationError

from flowcase.events import Envelope, EventPayload, Outcome
from flowcase.events.catalogue import case, intake, workflow
from flowcase.events.catalogue.case import CaseOrigin
from flowcase.events.catalogue.workflow import ApprovalDecision, OverrideKind, StepKind
from flowcase.events.codec import describe_validation_error
from flowcase.governance.facts import AuditKind, AuditRecord, Facts

# Name-based ids of imported logs: the same name gives the same UUID on every import.
NAMESPACE = UUID("5b0e4c8e-7f2a-4d39-9a61-3c8f0e2d1b47")
SOURCE = "governance-import"


class Activity(StrEnum):
    """One catalogue event each (its name in snake case)."""

    REQUEST_SUBMITTED = "request_submitted"
    INSTANCE_STARTED = "instance_started"
    STEP_ENTERED = "step_entered"
    STEP_COMPLETED = "step_completed"
    SLA_BREACHED = "sla_breached"
    APPROVAL_DECIDED = "approval_decided"
    OVERRIDE_APPLIED = "override_applied"
    ESCALATED_TO_CASE = "escalated_to_case"
    INSTANCE_COMPLETED = "instance_completed"
    CASE_OPENED = "case_opened"
    DECISION_RECORDED = "decision_recorded"
    CASE_OVERRIDE_APPLIED = "case_override_applied"
    CASE_RESOLVED = "case_resolved"


class EntryError(ValueError):
    """A log entry that cannot become a catalogue event; the message says which field and why."""


@dataclass(frozen=True)
class LogEntry:
    """One activity of a historical log. Ids are as the log writes them (any string)."""

    activity: Activity
    at: datetime
    request_id: str | None = None
    case_id: str | None = None
    process_type: str | None = None
    actor: str | None = None
    step: str | None = None
    step_kind: StepKind | None = None
    sla_due_at: datetime | None = None
    definition_version: int | None = None
    override_id: str | None = None
    override_kind: OverrideKind | None = None
    rule: str | None = None
    target: str | None = None
    decision_id: str | None = None
    decision: str | None = None
    outcome: str | None = None
    origin: CaseOrigin | None = None
    rationale: str | None = None
    relied_on: tuple[str, ...] = ()
    gap_acknowledged: bool = False
    # The id the source system knew the request by (`request_submitted`): an upstream
    # submission id; an imported log's own request id when that is no UUID.
    submission_id: str | None = None
    # The id the source system knew the case by (`case_opened`): an imported log's own case id
    # when that is no UUID.
    case_source_id: str | None = None


# The optional fields, in the order of the CSV columns and OCEL attributes.
OPTIONAL_FIELDS = tuple(f.name for f in fields(LogEntry) if f.name not in ("activity", "at"))
# How a field is written in a flat log: relied_on ids joined by this separator.
RELIED_ON_SEPARATOR = ";"


def parse_time(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise EntryError(f"{name}: not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise EntryError(f"{name}: {value!r} has no time zone (write e.g. 2026-11-24T09:15:00Z)")
    return parsed


def _text(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _enum(kind: type[StrEnum], value: Any, name: str) -> Any:
    text = _text(value)
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise EntryError(f"{name}: {text!r} is not one of {allowed}") from None


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = (_text(value) or "false").lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise EntryError(f"{name}: {value!r} is not true or false")


def _int(value: Any, name: str) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = _text(value)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise EntryError(f"{name}: {text!r} is not a whole number") from None


def _relied_on(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(t for v in value if (t := _text(v)))
    text = _text(value) or ""
    return tuple(part.strip() for part in text.split(RELIED_ON_SEPARATOR) if part.strip())


def entry_of(values: Mapping[str, Any]) -> LogEntry:
    """Read one entry from named values (a CSV row, an OCEL event's attributes): `activity` and
    `timestamp` are required, every other field optional; empty values count as absent."""
    activity = _enum(Activity, values.get("activity"), "activity")
    if activity is None:
        raise EntryError("activity: missing")
    if _text(values.get("timestamp")) is None and not isinstance(values.get("timestamp"), datetime):
        raise EntryError("timestamp: missing")
    due = values.get("sla_due_at")
    return LogEntry(
        activity=activity,
        at=parse_time(values["timestamp"], "timestamp"),
        request_id=_text(values.get("request_id")),
        case_id=_text(values.get("case_id")),
        process_type=_text(values.get("process_type")),
        actor=_text(values.get("actor")),
        step=_text(values.get("step")),
        step_kind=_enum(StepKind, values.get("step_kind"), "step_kind"),
        sla_due_at=None if _text(due) is None else parse_time(due, "sla_due_at"),
        definition_version=_int(values.get("definition_version"), "definition_version"),
        override_id=_text(values.get("override_id")),
        override_kind=_enum(OverrideKind, values.get("override_kind"), "override_kind"),
        rule=_text(values.get("rule")),
        target=_text(values.get("target")),
        decision_id=_text(values.get("decision_id")),
        decision=_text(values.get("decision")),
        outcome=_text(values.get("outcome")),
        origin=_enum(CaseOrigin, values.get("origin"), "origin"),
        rationale=_text(values.get("rationale")),
        relied_on=_relied_on(values.get("relied_on")),
        gap_acknowledged=_bool(values.get("gap_acknowledged"), "gap_acknowledged"),
        submission_id=_text(values.get("submission_id")),
        case_source_id=_text(values.get("case_source_id")),
    )


def identifier(kind: str, raw: str) -> UUID:
    """The UUID of an id as a log writes it: itself when it is one, else named by kind and id."""
    try:
        return UUID(raw)
    except ValueError:
        return uuid5(NAMESPACE, f"{kind}:{raw}")


def _source_id(raw: str | None) -> str | None:
    """A log's own id, kept where the catalogue holds a UUID made from it (`identifier`), so an
    export can be joined back to the system the log came from."""
    if raw is None:
        return None
    try:
        UUID(raw)
    except ValueError:
        return raw
    return None


def _require(entry: LogEntry, *names: str) -> None:
    missing = [n for n in names if getattr(entry, n) is None]
    if missing:
        raise EntryError(f"{', '.join(missing)}: required for {entry.activity}")


_UNEXPLAINED = "(none recorded)"


def _payload(entry: LogEntry) -> EventPayload:
    e = entry
    request_id = identifier("request", e.request_id) if e.request_id else None
    case_id = identifier("case", e.case_id) if e.case_id else None
    # A made-up id for records a log does not name: derived from what it does name.
    derived = f"{e.request_id or e.case_id}/{e.step or ''}/{e.at.isoformat()}"
    match e.activity:
        case Activity.REQUEST_SUBMITTED:
            _require(e, "request_id", "process_type")
            return intake.RequestSubmitted(
                request_id=request_id,
                submission_id=e.submission_id or _source_id(e.request_id),
                request_type=e.process_type,
                requester=e.actor or "unknown",
                priority="normal",
                submitted_at=e.at,
                channel="http",
                payload={},
            )
        case Activity.INSTANCE_STARTED:
            _require(e, "request_id", "process_type")
            return workflow.InstanceStarted(
                request_id=request_id,
                instance_id=uuid5(NAMESPACE, f"instance:{request_id}"),
                request_type=e.process_type,
                process=e.process_type,
                definition_version=e.definition_version or 1,
                due_at=e.sla_due_at,  # on a start, the request's promise
            )
        case Activity.STEP_ENTERED:
            _require(e, "request_id", "step")
            return workflow.StepEntered(
                request_id=request_id,
                step=e.step,
                kind=e.step_kind or StepKind.ACTION,
                sla_due_at=e.sla_due_at,
            )
        case Activity.STEP_COMPLETED:
            _require(e, "request_id", "step")
            return workflow.StepCompleted(
                request_id=request_id,
                step=e.step,
                kind=e.step_kind or StepKind.ACTION,
                outcome=e.outcome or "completed",
            )
        case Activity.SLA_BREACHED:
            _require(e, "request_id", "step")
            return workflow.SlaBreached(
                request_id=request_id, step=e.step, sla_seconds=0, due_at=e.sla_due_at or e.at
            )
        case Activity.APPROVAL_DECIDED:
            _require(e, "request_id", "step")
            return workflow.ApprovalDecided(
                request_id=request_id,
                step=e.step,
                decision=_enum(ApprovalDecision, e.decision, "decision")
                or ApprovalDecision.APPROVED,
                rationale=e.rationale,
                relied_on=list(e.relied_on),
            )
        case Activity.OVERRIDE_APPLIED:
            _require(e, "request_id")
            override = workflow.OverrideApplied(
                request_id=request_id,
                override_id=identifier("override", e.override_id or derived),
                override=e.override_kind or OverrideKind.FORCE_ROUTE,
                step=e.step,
                rule=e.rule,
                definition_version=e.definition_version or 1,
                target=e.target,
                reason=e.rationale or _UNEXPLAINED,
                relied_on=list(e.relied_on),
            )
            # The live API refuses an override without a reason; a history may hold one. Kept
            # as it was, without one (every other field validated above), it counts as an
            # override and as an audit-trail gap: the gap the ops leader has to find.
            return override if e.rationale else override.model_copy(update={"reason": ""})
        case Activity.ESCALATED_TO_CASE:
            _require(e, "request_id", "process_type")
            return workflow.EscalatedToCase(
                request_id=request_id,
                request_type=e.process_type,
                process=e.process_type,
                definition_version=e.definition_version or 1,
                reason_code="rule",
                reason=e.rationale or "imported history",
                step=e.step or "escalate",
                intake_payload={},
                history=[],
            )
        case Activity.INSTANCE_COMPLETED:
            _require(e, "request_id")
            default = Outcome.RESOLVED_BY_CASE if case_id else Outcome.COMPLETED
            return workflow.InstanceCompleted(
                request_id=request_id,
                outcome=_enum(Outcome, e.outcome, "outcome") or default,
                case_id=case_id,
            )
        case Activity.CASE_OPENED:
            _require(e, "case_id")
            origin = e.origin or (CaseOrigin.ESCALATION if request_id else CaseOrigin.MANUAL)
            return case.CaseOpened(
                case_id=case_id,
                request_id=request_id,
                request_type=e.process_type,
                origin=origin,
                step=e.step,
                reason=e.rationale,
                title=f"{e.process_type or 'case'} {e.case_id}",
                source_id=e.case_source_id or _source_id(e.case_id),
            )
        case Activity.DECISION_RECORDED:
            _require(e, "case_id")
            return case.DecisionRecorded(
                case_id=case_id,
                decision_id=e.decision_id or str(uuid5(NAMESPACE, f"decision:{derived}")),
                decision=e.decision or "recorded",
                rationale=e.rationale,
                relied_on=list(e.relied_on),
                gap_acknowledged=e.gap_acknowledged,
            )
        case Activity.CASE_OVERRIDE_APPLIED:
            _require(e, "case_id")
            return case.CaseOverrideApplied(
                case_id=case_id,
                override_id=e.override_id or str(uuid5(NAMESPACE, f"case-override:{derived}")),
                target=e.target or "unspecified",
                rationale=e.rationale,
                relied_on=list(e.relied_on),
                gap_acknowledged=e.gap_acknowledged,
            )
        case Activity.CASE_RESOLVED:
            _require(e, "case_id")
            return case.CaseResolved(
                case_id=case_id,
                request_id=request_id,
                outcome_code=e.outcome or "resolved",
                rationale=e.rationale,
                relied_on=list(e.relied_on),
                gap_acknowledged=e.gap_acknowledged,
            )


def envelope_of(entry: LogEntry) -> Envelope:
    """The one catalogue event an entry states, with an event id derived from its content."""
    try:
        payload = _payload(entry)
    except ValidationError as exc:
        raise EntryError(describe_validation_error(exc)) from None
    # The payload's own JSON (fields in model order, as the codec writes them) states it.
    stated = payload.model_dump_json()
    content = f"{payload.event_type}|{entry.at.isoformat()}|{entry.actor!r}|{stated}"
    request_id = getattr(payload, "request_id", None)
    return Envelope.wrap(
        payload,
        source=SOURCE,
        request_id=request_id,
        occurred_at=entry.at,
        actor=entry.actor,
        event_id=uuid5(NAMESPACE, f"event:{content}"),
    )


def entries_of(facts: Facts) -> Iterator[LogEntry]:
    """Entries that state `facts` again: every request and case with a known process type, with
    their steps, overrides, approvals, case records and resolutions.

    A fact keeps what the figures need, not every event: an SLA breach has no time of its own
    (it is placed at the step's deadline, else its entry), an approval's decision is not kept
    (approved), nor who submitted a request, and an escalated request whose escalation only a
    case stated is escalated again by that case's opening.
    """
    known = {rid for rid, r in facts.requests.items() if r.process_type}
    cases_of: dict[UUID, list[UUID]] = {}
    for case_id, c in sorted(facts.cases.items()):
        if c.request_id:
            cases_of.setdefault(c.request_id.value, []).append(case_id)
    audit = {a.record_id: a for a in facts.audit.values()}

    for request_id in sorted(known):
        r = facts.requests[request_id]
        rid, process_type = str(request_id), r.process_type
        version = r.definition_version
        if r.submitted_at:
            yield LogEntry(
                Activity.REQUEST_SUBMITTED,
                r.submitted_at,
                request_id=rid,
                process_type=process_type,
                submission_id=r.submission_id.value if r.submission_id else None,
            )
        if version:
            yield LogEntry(
                Activity.INSTANCE_STARTED,
                version.at,
                request_id=rid,
                process_type=process_type,
                definition_version=version.value,
                sla_due_at=r.due_at.value if r.due_at else None,
            )
            if r.escalated_at:
                yield LogEntry(
                    Activity.ESCALATED_TO_CASE,
                    r.escalated_at,
                    request_id=rid,
                    process_type=process_type,
                    definition_version=version.value,
                )
        if r.outcome:
            case_ids = cases_of.get(request_id, [])
            yield LogEntry(
                Activity.INSTANCE_COMPLETED,
                r.outcome.at,
                request_id=rid,
                process_type=process_type,
                outcome=r.outcome.value.value,
                case_id=str(case_ids[0]) if case_ids else None,
            )
    for (request_id, step), s in sorted(facts.steps.items()):
        if request_id not in known:
            continue
        rid = str(request_id)
        kind = s.kind.value if s.kind else None
        if s.entry:
            yield LogEntry(
                Activity.STEP_ENTERED,
                s.entry.at,
                request_id=rid,
                step=step,
                step_kind=kind,
                sla_due_at=s.sla_due_at,
            )
        if s.completed_at:
            yield LogEntry(
                Activity.STEP_COMPLETED, s.completed_at, request_id=rid, step=step, step_kind=kind
            )
        submitted = facts.requests[request_id].submitted_at
        breached_at = s.sla_due_at or s.entered_at or s.completed_at or submitted
        if s.sla_breached and breached_at:
            yield LogEntry(Activity.SLA_BREACHED, breached_at, request_id=rid, step=step)
    for override_id, o in sorted(facts.overrides.items()):
        if o.request_id not in known:
            continue
        record = audit.get(f"request/{o.request_id}/override/{override_id}")
        yield replace(
            _audited(Activity.OVERRIDE_APPLIED, o.at, record),
            request_id=str(o.request_id),
            override_id=str(override_id),
            override_kind=o.kind,
            step=o.step,
            rule=o.rule,
            definition_version=o.definition_version,
        )
    for record_id, a in sorted(audit.items()):
        scope, owner, *rest = record_id.split("/", 3)
        if scope == "request" and rest[0] == "approval" and a.request_id in known:
            yield replace(
                _audited(Activity.APPROVAL_DECIDED, a.at, a), request_id=owner, step=rest[1]
            )
        elif scope == "case" and a.case_id in facts.cases:
            activity, named = _CASE_RECORDS[a.kind], rest[1] if len(rest) > 1 else None
            entry = replace(_audited(activity, a.at, a), case_id=owner)
            if activity is Activity.DECISION_RECORDED:
                entry = replace(entry, decision_id=named)
            elif activity is Activity.CASE_OVERRIDE_APPLIED:
                entry = replace(entry, override_id=named)
            else:
                linked_request = facts.cases[a.case_id].request_id
                entry = replace(
                    entry, request_id=str(linked_request.value) if linked_request else None
                )
            yield entry
    for case_id, c in sorted(facts.cases.items()):
        if c.opened_at is None:
            continue
        request = facts.requests.get(c.request_id.value) if c.request_id else None
        escalated = request is not None and request.escalated_at is not None
        yield LogEntry(
            Activity.CASE_OPENED,
            c.opened_at,
            case_id=str(case_id),
            request_id=str(c.request_id.value) if c.request_id else None,
            process_type=c.request_type.value if c.request_type else None,
            origin=CaseOrigin.ESCALATION if escalated else CaseOrigin.MANUAL,
            case_source_id=c.source_id.value if c.source_id else None,
        )


_CASE_RECORDS = {
    AuditKind.DECISION: Activity.DECISION_RECORDED,
    AuditKind.OVERRIDE: Activity.CASE_OVERRIDE_APPLIED,
    AuditKind.RESOLUTION: Activity.CASE_RESOLVED,
}


def _audited(activity: Activity, at: datetime, record: AuditRecord | None) -> LogEntry:
    if record is None:
        return LogEntry(activity, at)
    return LogEntry(
        activity,
        at,
        actor=record.actor,
        rationale=record.rationale,
        relied_on=record.relied_on,
        gap_acknowledged=record.gap_acknowledged,
    )
