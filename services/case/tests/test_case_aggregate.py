"""The case aggregate: every command, the status machine, and the justification rules."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from flowcase.case.aggregate import Case, case_id_for_request
from flowcase.case.errors import (
    CaseClosed,
    CaseConflict,
    ClockConflict,
    IllegalTransition,
    InvalidCommand,
    InvalidField,
    MissingJustification,
    TaskAlreadyCompleted,
    UnknownReference,
)
from flowcase.case.lifecycle import TRANSITIONS, status_changes_from
from flowcase.events.catalogue.case import CaseStatus
from flowcase.events.catalogue.workflow import EscalatedToCase

SHA = hashlib.sha256(b"IdP log export").hexdigest()


def only_event(case: Case) -> Case.Event:
    (event,) = case.collect_events()
    assert isinstance(event, Case.Event)
    return event


def test_opening_from_an_escalation_keeps_the_request_story(escalation: EscalatedToCase) -> None:
    case = Case.open_from_escalation(escalation)

    assert case.id == case_id_for_request(escalation.request_id)
    assert case.request_id == escalation.request_id
    assert case.origin == "escalation"
    assert case.reason_code == "rule"
    assert case.priority == "high"
    assert case.title == "access_complaint: Access complaints always need an investigation"
    assert case.context == {"system": "payroll", "complaint": "I was locked out"}
    assert case.workflow_history[0]["step"] == "check-fields"
    assert case.status is CaseStatus.OPEN
    event = only_event(case)
    assert isinstance(event, Case.CaseOpened)
    assert event.actor is None


def test_the_same_request_always_names_the_same_case(escalation: EscalatedToCase) -> None:
    first = Case.open_from_escalation(escalation)
    again = Case.open_from_escalation(escalation)
    assert first.id == again.id


def test_a_person_opens_a_case_directly() -> None:
    case = Case.open_manually("VIP complaint", actor="sup-1", priority="urgent")

    assert case.origin == "manual"
    assert case.opened_by == "sup-1"
    assert case.priority == "urgent"
    assert case.request_id is None
    assert only_event(case).actor == "sup-1"


def test_a_manual_opening_needs_an_actor_and_a_title() -> None:
    with pytest.raises(InvalidField, match="actor"):
        Case.open_manually("title", actor=" ")
    with pytest.raises(InvalidField, match="title"):
        Case.open_manually("", actor="sup-1")
    with pytest.raises(InvalidField, match="priority"):
        Case.open_manually("title", actor="sup-1", priority="whenever")


def test_assign_and_claim(case: Case) -> None:
    case.assign("it-security", "agent-42", actor="sup-1")
    assigned = only_event(case)
    assert isinstance(assigned, Case.CaseAssigned)
    assert (case.team, case.assignee) == ("it-security", "agent-42")
    assert (assigned.actor, assigned.team, assigned.assignee) == (
        "sup-1",
        "it-security",
        "agent-42",
    )

    case.claim(actor="agent-7")
    assert case.assignee == "agent-7"
    claimed = only_event(case)
    assert isinstance(claimed, Case.CaseClaimed)
    assert claimed.assignee == "agent-7"


def test_add_note(case: Case) -> None:
    first = case.add_note("Lockout followed 5 failed MFA prompts", actor="agent-1")
    second = case.add_note("Requester confirmed", actor="agent-2")

    assert (first, second) == ("n-1", "n-2")
    note = case.notes["n-1"]
    assert (note.text, note.by) == ("Lockout followed 5 failed MFA prompts", "agent-1")


def test_every_event_carries_who_and_when(case: Case) -> None:
    before = datetime.now(UTC)
    case.add_note("text", actor="agent-1")
    event = only_event(case)
    assert event.actor == "agent-1"
    assert before <= event.timestamp <= datetime.now(UTC)
    assert case.notes["n-1"].at == event.timestamp


def test_log_communication(case: Case) -> None:
    communication_id = case.log_communication(
        "outbound", "email", ["jdoe@example.com"], "Asked when it started", actor="agent-1"
    )
    logged = case.communications[communication_id]
    assert communication_id == "m-1"
    assert (logged.direction, logged.channel, logged.parties) == (
        "outbound",
        "email",
        ["jdoe@example.com"],
    )
    with pytest.raises(InvalidField, match="direction"):
        case.log_communication("sideways", "email", [], "x", actor="agent-1")


def test_attach_evidence_with_its_content_hash(case: Case) -> None:
    evidence_id = case.attach_evidence("s3://evidence/idp.json", SHA.upper(), actor="agent-1")
    assert evidence_id == "e-1"
    assert case.evidence["e-1"].sha256 == SHA
    with pytest.raises(InvalidField, match="sha256"):
        case.attach_evidence("s3://evidence/idp.json", "not-a-digest", actor="agent-1")


def test_add_and_complete_a_task(case: Case) -> None:
    due = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    task_id = case.add_task("Pull IdP logs", due, actor="agent-1")
    assert case.tasks[task_id].due_at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert not case.tasks[task_id].completed

    case.complete_task(task_id, "Logs attached as e-1", actor="agent-2")
    done = case.tasks[task_id]
    assert done.completed
    assert (done.completed_by, done.result, done.added_by) == (
        "agent-2",
        "Logs attached as e-1",
        "agent-1",
    )

    with pytest.raises(TaskAlreadyCompleted):
        case.complete_task(task_id, actor="agent-2")
    with pytest.raises(UnknownReference):
        case.complete_task("t-99", actor="agent-2")
    with pytest.raises(InvalidField, match="due_at"):
        case.add_task("Call back", datetime(2026, 11, 25, 10, 0), actor="agent-1")


def test_set_milestone(case: Case) -> None:
    case.set_milestone("root-cause-found", actor="agent-1")
    assert [m.milestone for m in case.milestones] == ["root-cause-found"]


def test_change_status_along_the_lifecycle(case: Case) -> None:
    case.change_status("investigating", actor="agent-1")
    event = only_event(case)
    assert isinstance(event, Case.StatusChanged)
    assert (event.from_status, event.to_status) == ("open", "investigating")
    case.change_status(CaseStatus.PENDING, actor="agent-1")
    case.change_status(CaseStatus.INVESTIGATING, actor="agent-1")
    assert case.status is CaseStatus.INVESTIGATING


ILLEGAL_CHANGES = [
    (current, target)
    for current in CaseStatus
    for target in CaseStatus
    if target not in status_changes_from(current)
]


def bring_to(case: Case, status: CaseStatus) -> None:
    note = case.add_note("why", actor="agent-1")
    paths = {
        CaseStatus.OPEN: [],
        CaseStatus.INVESTIGATING: ["investigating"],
        CaseStatus.PENDING: ["pending"],
        CaseStatus.RESOLVED: ["resolve"],
        CaseStatus.CLOSED: ["resolve", "closed"],
    }
    for step in paths[status]:
        if step == "resolve":
            case.resolve("fixed", "because", [note], actor="agent-1")
        else:
            case.change_status(step, actor="agent-1")
    assert case.status is status


@pytest.mark.parametrize(("current", "target"), ILLEGAL_CHANGES)
def test_every_illegal_status_change_is_refused_with_the_allowed_ones(
    case: Case, current: CaseStatus, target: CaseStatus
) -> None:
    bring_to(case, current)
    version = case.version

    with pytest.raises(IllegalTransition) as refused:
        case.change_status(target, actor="agent-1")

    assert refused.value.allowed == status_changes_from(current)
    assert (refused.value.from_status, refused.value.to_status) == (current, target)
    assert isinstance(refused.value, CaseConflict)
    assert case.version == version


def test_resolved_is_reached_only_by_resolving(case: Case) -> None:
    with pytest.raises(IllegalTransition, match=r"allowed: investigating, pending"):
        case.change_status("resolved", actor="agent-1")


@pytest.mark.parametrize(
    ("current", "refusal"),
    [(CaseStatus.RESOLVED, IllegalTransition), (CaseStatus.CLOSED, CaseClosed)],
)
def test_a_resolved_or_closed_case_cannot_be_resolved_again(
    case: Case, current: CaseStatus, refusal: type[Exception]
) -> None:
    bring_to(case, current)
    with pytest.raises(refusal):
        case.resolve("fixed", "again", ["n-1"], actor="agent-1")


@pytest.mark.parametrize("current", [CaseStatus.RESOLVED, CaseStatus.CLOSED])
def test_reopen(case: Case, current: CaseStatus) -> None:
    bring_to(case, current)
    case.change_status("open", actor="agent-1")
    assert case.status is CaseStatus.OPEN
    case.resolve("fixed-for-real", "second look", ["n-1"], actor="agent-1")
    assert [r.outcome_code for r in case.resolutions] == ["fixed", "fixed-for-real"]


def test_the_status_machine_reaches_every_status_and_lets_every_case_be_reopened() -> None:
    assert set(TRANSITIONS) == set(CaseStatus)
    assert CaseStatus.OPEN in TRANSITIONS[CaseStatus.CLOSED]
    assert CaseStatus.OPEN in TRANSITIONS[CaseStatus.RESOLVED]


def test_a_closed_case_takes_nothing_but_reopening(case: Case) -> None:
    bring_to(case, CaseStatus.CLOSED)
    commands = [
        lambda: case.add_note("late", actor="agent-1"),
        lambda: case.assign("team", actor="agent-1"),
        lambda: case.claim(actor="agent-1"),
        lambda: case.set_milestone("m", actor="agent-1"),
        lambda: case.record_decision("d", "r", ["n-1"], actor="agent-1"),
    ]
    for command in commands:
        with pytest.raises(CaseClosed):
            command()


def test_a_decision_carries_its_rationale_and_what_it_relied_on(case: Case) -> None:
    note = case.add_note("Faulty token in the IdP log", actor="agent-1")
    evidence = case.attach_evidence("s3://idp.json", SHA, actor="agent-1")
    message = case.log_communication("inbound", "phone", ["jdoe"], "Lost phone", actor="agent-1")
    case.collect_events()

    decision_id = case.record_decision(
        "Restore access", "Token fault, not an attack", [note, evidence, message], actor="sup-1"
    )

    event = only_event(case)
    assert isinstance(event, Case.DecisionRecorded)
    assert event.relied_on == ["n-1", "e-1", "m-1"]
    assert event.gap_acknowledged is False
    assert case.decisions[decision_id].by == "sup-1"
    assert case.audit_gaps == []


@pytest.mark.parametrize(
    ("rationale", "relied_on", "missing"),
    [
        (None, ["n-1"], ("rationale",)),
        ("   ", ["n-1"], ("rationale",)),
        ("because", [], ("relied_on",)),
        (None, [], ("rationale", "relied_on")),
    ],
)
def test_an_unjustified_decision_override_or_resolution_is_refused(
    case: Case, rationale: str | None, relied_on: list[str], missing: tuple[str, ...]
) -> None:
    case.add_note("n", actor="agent-1")
    version = case.version
    for command in (case.record_decision, case.apply_override, case.resolve):
        with pytest.raises(MissingJustification) as refused:
            command("x", rationale, relied_on, actor="sup-1")
        assert refused.value.missing == missing
        assert isinstance(refused.value, InvalidCommand)
    assert case.version == version


def test_an_acknowledged_gap_is_recorded_and_flagged(case: Case) -> None:
    decision_id = case.record_decision("Restore access", gap_acknowledged=True, actor="sup-1")
    override_id = case.apply_override(
        "sla", "Requester travelling", gap_acknowledged=True, actor="sup-1"
    )
    case.resolve("access_restored", gap_acknowledged=True, actor="sup-1")

    decided, overridden, resolved = case.collect_events()
    assert isinstance(decided, Case.DecisionRecorded)
    assert isinstance(overridden, Case.CaseOverrideApplied)
    assert isinstance(resolved, Case.CaseResolved)
    assert [e.gap_acknowledged for e in (decided, overridden, resolved)] == [True, True, True]
    assert decided.rationale is None
    assert overridden.rationale == "Requester travelling"
    assert case.audit_gaps == [
        case.decisions[decision_id],
        case.overrides[override_id],
        case.resolutions[0],
    ]


def test_a_justified_record_is_no_gap_even_when_the_caller_says_so(case: Case) -> None:
    case.add_note("n", actor="agent-1")
    case.record_decision("d", "r", ["n-1"], gap_acknowledged=True, actor="sup-1")
    assert case.audit_gaps == []


def test_relied_on_ids_must_exist_in_the_case_even_for_an_acknowledged_gap(case: Case) -> None:
    case.add_note("n", actor="agent-1")
    for command in (case.record_decision, case.apply_override, case.resolve):
        with pytest.raises(UnknownReference) as refused:
            command("x", "r", ["n-1", "e-9", "t-1"], gap_acknowledged=True, actor="sup-1")
        assert refused.value.ids == ("e-9", "t-1")


def test_a_resolution_may_rely_on_decisions_and_carries_the_request(
    escalation: EscalatedToCase,
) -> None:
    case = Case.open_from_escalation(escalation)
    message = case.log_communication("outbound", "email", ["jdoe"], "Confirmed", actor="agent-1")
    decision = case.record_decision("Restore", "Token fault", [message], actor="sup-1")
    case.collect_events()

    case.resolve("access_restored", "Requester confirmed", [decision, message], actor="agent-1")

    resolved = only_event(case)
    assert isinstance(resolved, Case.CaseResolved)
    assert resolved.request_id == escalation.request_id
    assert resolved.relied_on == ["d-1", "m-1"]
    assert case.status is CaseStatus.RESOLVED


def test_apply_override(case: Case) -> None:
    message = case.log_communication("inbound", "email", ["jdoe"], "Travelling", actor="agent-1")
    override_id = case.apply_override("sla", "Agreed a later date", [message], actor="sup-1")
    assert override_id == "o-1"
    assert case.overrides["o-1"].target == "sla"


def test_relied_on_ids_are_kept_once_in_the_order_given(case: Case) -> None:
    case.add_note("a", actor="agent-1")
    case.add_note("b", actor="agent-1")
    decision_id = case.record_decision("d", "r", ["n-2", "n-1", "n-2"], actor="sup-1")
    assert case.decisions[decision_id].relied_on == ["n-2", "n-1"]


def test_every_command_needs_an_actor(case: Case) -> None:
    with pytest.raises(InvalidField, match="actor"):
        case.add_note("text", actor="")
    with pytest.raises(InvalidField, match="actor"):
        case.change_status("investigating", actor="")


def test_a_broken_promise_is_stated_once_when_due_and_never_after_resolution(
    escalation: EscalatedToCase,
) -> None:
    due = datetime(2026, 11, 24, 13, tzinfo=UTC)
    case = Case.open_from_escalation(escalation.model_copy(update={"due_at": due}))
    assert case.record_broken_promise(due - timedelta(seconds=1)) is False  # not due yet
    assert case.record_broken_promise(due) is True
    assert case.promise_broken_at is not None
    assert case.record_broken_promise(due + timedelta(hours=1)) is False  # stated already
    stated = [e for e in case.collect_events() if isinstance(e, Case.PromiseBroken)]
    assert [(e.due_at, e.actor) for e in stated] == [(due, None)]
    # A case without a promise, or resolved before it fell due, states nothing.
    assert Case.open_manually("t", actor="a").record_broken_promise(due) is False
    resolved = Case.open_from_escalation(escalation.model_copy(update={"due_at": due}))
    resolved.add_note("done", actor="agent")
    resolved.resolve("fixed", rationale="done", relied_on=["n-1"], actor="agent")
    assert resolved.record_broken_promise(due) is False


def test_a_paused_clock_resumes_with_the_time_that_was_left(escalation: EscalatedToCase) -> None:
    due = datetime.now(UTC) + timedelta(hours=3)
    case = Case.open_from_escalation(escalation.model_copy(update={"due_at": due}))
    with pytest.raises(ClockConflict, match="not paused"):
        case.resume_clock(actor="agent")
    case.pause_clock("Waiting for the employee's statement", actor="agent")
    paused_at = case.clock_paused_at
    assert paused_at is not None
    with pytest.raises(ClockConflict, match="paused already"):
        case.pause_clock("again", actor="agent")
    # Paused, its promise is not broken whatever the time.
    assert case.record_broken_promise(due + timedelta(days=1)) is False
    case.resume_clock(actor="agent")
    resumed = [e for e in case.collect_events() if isinstance(e, Case.ClockResumed)]
    [event] = resumed
    # The promise moved on by exactly the pause: the time left is what it was when paused.
    assert case.due_at == event.due_at == due + (event.timestamp - paused_at)
    assert case.clock_paused_at is None
    with pytest.raises(InvalidField):
        case.pause_clock(" ", actor="agent")
    with pytest.raises(ClockConflict, match="no promised time"):
        Case.open_manually("t", actor="a").pause_clock("why", actor="a")
