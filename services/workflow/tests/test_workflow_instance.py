"""The aggregate in eventsourcing applications (in-memory persistence), the stored formats it
reads, and the catalogue mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import RecordConflictError, StoredEvent, Tracking

from flowcase.events import decode, decode_all, encode, expand
from flowcase.events.catalogue import Outcome, case, intake, workflow
from flowcase.events.catalogue.workflow import ApprovalDecision, StepKind
from flowcase.eventstore import stable_event_id
from flowcase.workflow import instance as instance_module
from flowcase.workflow.application import InstanceNotFound, WorkflowApplication
from flowcase.workflow.catalogue_mapping import (
    close_from,
    definition_published,
    submit_from,
    to_envelopes,
)
from flowcase.workflow.effects import RunAction
from flowcase.workflow.engine import TriggerRefused
from flowcase.workflow.instance import WorkflowInstance
from flowcase.workflow.registry import DefinitionRegistry
from flowcase.workflow.state import Status, instance_id
from flowcase.workflow.triggers import (
    CloseByCase,
    DecideApproval,
    ReportActionSucceeded,
    SkipStep,
    Submit,
)

FIRST_FORMAT = Path(__file__).with_name("first_format_instances.json")

T0 = datetime(2026, 11, 24, 9, tzinfo=UTC)
REQUEST_ID = UUID("0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69")
INVOICE = {"invoice_id": "INV-2291", "vendor": "Acme", "amount": 1840.5, "currency": "USD"}


@pytest.fixture
def app(shipped) -> WorkflowApplication:
    return WorkflowApplication(DefinitionRegistry(shipped.values()))


def invoice(request_id: UUID = REQUEST_ID) -> Submit:
    return Submit(
        request_id=request_id,
        request_type="invoice_approval",
        requester="ap-clerk@example.com",
        payload=INVOICE,
    )


def stored_events(app: WorkflowApplication) -> list:
    return [
        app.mapper.to_domain_event(item)
        for item in app.recorder.select_notifications(start=None, limit=1000)
    ]


def test_the_instance_id_follows_from_the_request_id(app) -> None:
    app.submit(invoice(), T0)
    assert instance_id(REQUEST_ID) == instance_id(UUID(str(REQUEST_ID)))
    assert app.repository.get(instance_id(REQUEST_ID)).id == instance_id(REQUEST_ID)
    assert WorkflowInstance.create_id(REQUEST_ID) == instance_id(REQUEST_ID)


def test_a_duplicate_intake_message_creates_one_instance(app) -> None:
    assert app.submit(invoice(), T0) != ()
    assert app.submit(invoice(), T0 + timedelta(seconds=3)) == ()
    started = [e for e in stored_events(app) if type(e).__name__ == "InstanceStarted"]
    assert len(started) == 1


def test_a_saved_instance_loads_back_to_the_same_state(shipped) -> None:
    definition = shipped["invoice_approval"]
    application = Application[UUID]()
    instance, _ = WorkflowInstance.start(definition, invoice(), T0)
    instance.handle(
        definition,
        DecideApproval(step="finance-approval", decision=ApprovalDecision.APPROVED, actor="fm"),
        T0 + timedelta(hours=2),
    )
    application.save(instance)
    loaded: WorkflowInstance = application.repository.get(instance.id)
    assert loaded.state == instance.state
    assert loaded.version == instance.version
    assert loaded.state.current_step == "schedule-payment"


def test_handle_returns_effects_and_saves_the_events(app) -> None:
    app.submit(invoice(), T0)
    effects = app.handle(
        REQUEST_ID,
        DecideApproval(step="finance-approval", decision=ApprovalDecision.APPROVED, actor="fm"),
        T0 + timedelta(hours=1),
    )
    assert [type(e).__name__ for e in effects] == ["RunAction", "CancelTimer"]
    app.handle(REQUEST_ID, ReportActionSucceeded(step="schedule-payment"), T0 + timedelta(hours=2))
    assert app.state(REQUEST_ID).status is Status.COMPLETED


def test_refused_triggers_save_nothing(app) -> None:
    app.submit(invoice(), T0)
    version = app.repository.get(instance_id(REQUEST_ID)).version
    with pytest.raises(TriggerRefused):
        app.handle(REQUEST_ID, SkipStep(step="schedule-payment", actor="a", reason="r"), T0)
    with pytest.raises(TriggerRefused):
        app.handle(REQUEST_ID, DecideApproval(step="nope", decision="approved", actor="a"), T0)
    assert app.repository.get(instance_id(REQUEST_ID)).version == version


def test_an_unknown_request_has_no_instance(app) -> None:
    with pytest.raises(InstanceNotFound):
        app.state(REQUEST_ID)


def test_a_running_instance_keeps_the_version_it_started_with(shipped) -> None:
    v1 = shipped["invoice_approval"]
    registry = DefinitionRegistry([v1])
    app = WorkflowApplication(registry)
    app.submit(invoice(), T0)
    # v2 drops the approval step; the running instance still waits for its approval.
    v2 = v1.model_copy(
        update={"version": 2, "steps": [s for s in v1.steps if s.kind is not StepKind.APPROVAL]}
    )
    registry.publish(v2)
    effects = app.handle(
        REQUEST_ID,
        DecideApproval(step="finance-approval", decision=ApprovalDecision.APPROVED, actor="fm"),
        T0 + timedelta(hours=1),
    )
    assert app.state(REQUEST_ID).definition_version == 1
    assert any(isinstance(e, RunAction) for e in effects)
    # A new request gets the new version and no approval.
    other = UUID("5f0c1d2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f")
    app.submit(invoice(other), T0)
    assert app.state(other).definition_version == 2
    assert app.state(other).current_step == "schedule-payment"


def test_a_turn_is_one_stored_event_and_the_envelopes_of_its_events(app) -> None:
    app.submit(invoice(), T0)
    app.handle(
        REQUEST_ID,
        DecideApproval(step="finance-approval", decision=ApprovalDecision.DENIED, actor="fm"),
        T0 + timedelta(hours=1),
    )
    app.handle(REQUEST_ID, CloseByCase(case_id=REQUEST_ID), T0 + timedelta(days=1))
    stored = stored_events(app)
    assert [type(e).__name__ for e in stored] == ["InstanceStarted", "Advanced", "Advanced"]
    messages = [message for event in stored for message in to_envelopes(event)]
    assert len(messages) == 3
    assert [decode(encode(m)) for m in messages] == messages
    envelopes = [e for m in messages for e in decode_all(encode(m))]
    types = [e.event_type for e in envelopes]
    assert types[0] == "workflow.InstanceStarted"
    assert types[-4:] == [
        "workflow.ApprovalDecided",
        "workflow.StepCompleted",
        "workflow.EscalatedToCase",
        "workflow.InstanceCompleted",
    ]
    # The approver is the actor of the decision alone; what followed is the workflow's own.
    assert [e.actor for e in envelopes[-4:]] == ["fm", None, None, None]
    assert [e.occurred_at for e in envelopes[-4:-1]] == [T0 + timedelta(hours=1)] * 3
    started = envelopes[0].payload
    assert isinstance(started, workflow.InstanceStarted)
    assert started.instance_id == instance_id(REQUEST_ID)
    assert (started.requester, started.payload) == ("ap-clerk@example.com", INVOICE)
    assert app.state(REQUEST_ID).status.value == Outcome.RESOLVED_BY_CASE.value


def test_a_routine_request_is_two_stored_turns(app) -> None:
    request = UUID(int=42)
    app.submit(password_reset(request), T0)
    app.handle(request, ReportActionSucceeded(step="reset-password"), T0 + timedelta(seconds=1))
    turns = app.turns(request)
    assert len(turns) == 2
    assert sum(len(turn.events) for turn in turns) == 12
    assert app.state(request).status is Status.COMPLETED


def first_format_app(shipped) -> WorkflowApplication:
    """An application whose store holds instances written in the first format (one stored
    event per event), as an earlier release stored them."""
    app = WorkflowApplication(DefinitionRegistry(shipped.values()))
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(item["originator_id"]),
                originator_version=item["originator_version"],
                topic=item["topic"],
                state=item["state"].encode(),
            )
            for item in json.loads(FIRST_FORMAT.read_text())
        ]
    )
    return app


def test_instances_stored_in_the_first_format_load_as_they_were(shipped) -> None:
    old = first_format_app(shipped)
    new = WorkflowApplication(DefinitionRegistry(shipped.values()))
    reset, denied, skipped = UUID(int=1), UUID(int=2), UUID(int=3)
    # What the earlier release was asked, asked again of this one.
    new.submit(password_reset(reset).model_copy(update={"requester": "jdoe"}), T0)
    new.handle(reset, ReportActionSucceeded(step="reset-password"), T0 + timedelta(seconds=1))
    clerk = {"requester": "clerk"}
    new.submit(invoice(denied).model_copy(update=clerk), T0)
    deny = DecideApproval(
        step="finance-approval",
        decision=ApprovalDecision.DENIED,
        actor="fm",
        rationale="Over budget",
        relied_on=["budget-q4"],
    )
    new.handle(denied, deny, T0 + timedelta(hours=1))
    new.handle(denied, CloseByCase(case_id=UUID(int=99)), T0 + timedelta(days=1))
    new.submit(invoice(skipped).model_copy(update=clerk), T0)
    skip = SkipStep(
        step="finance-approval",
        actor="supervisor",
        reason="Approved by phone",
        override_id=UUID(int=7),
    )
    new.handle(skipped, skip, T0 + timedelta(minutes=5))

    # Fields added since (an escalation's clock, version 2) are not in what was stored then.
    later = {"submitted_at", "due_at"}
    for request in (reset, denied, skipped):
        assert old.state(request) == new.state(request)
        assert [e.model_dump(exclude=later) for t in old.turns(request) for e in t.events] == [
            e.model_dump(exclude=later) for t in new.turns(request) for e in t.events
        ]
    # The override retried finds its id applied; the old instance goes on in the new format.
    assert old.handle(skipped, skip, T0 + timedelta(minutes=6)) == ()
    old.handle(skipped, ReportActionSucceeded(step="schedule-payment"), T0 + timedelta(hours=1))
    assert old.state(skipped).status is Status.COMPLETED

    # Re-published, a first-format event keeps its envelope id and its actor.
    stored = stored_events(first_format_app(shipped))
    envelopes = [envelope for event in stored for envelope in to_envelopes(event)]
    assert len(envelopes) == len(stored)
    assert [e.event_id for e in envelopes] == [
        stable_event_id(e.originator_id, e.originator_version) for e in stored
    ]
    assert {e.actor for e in envelopes if e.event_type == "workflow.ApprovalDecided"} == {"fm"}
    assert {e.actor for e in envelopes if e.event_type == "workflow.OverrideApplied"} == {
        "supervisor"
    }
    assert all(e.actor is None for e in envelopes if e.event_type == "workflow.StepCompleted")


def test_a_definition_is_published_with_its_schema_and_step_slas(shipped) -> None:
    published = definition_published(shipped["password_reset"])
    assert (published.request_type, published.process, published.version) == (
        "password_reset",
        "password-reset",
        1,
    )
    assert published.request_schema["required"] == ["account", "system"]
    assert [(s.name, s.sla_seconds) for s in published.steps][2] == ("acknowledge", 900)


def test_catalogue_events_become_triggers() -> None:
    submitted = intake.RequestSubmitted.model_validate(
        intake.RequestSubmitted.model_json_schema()["examples"][0]
    )
    submit = submit_from(submitted)
    assert (submit.request_id, submit.request_type, submit.payload) == (
        submitted.request_id,
        "invoice_approval",
        submitted.payload,
    )
    resolved = case.CaseResolved.model_validate(
        case.CaseResolved.model_json_schema()["examples"][0]
    )
    assert close_from(resolved) == (resolved.request_id, CloseByCase(case_id=resolved.case_id))
    assert close_from(resolved.model_copy(update={"request_id": None})) is None


def test_a_request_type_nobody_serves_is_rejected_at_once(app) -> None:
    submission = Submit(request_id=REQUEST_ID, request_type="coffee", requester="j", payload={})
    assert app.submit(submission, T0) == ()
    state = app.state(REQUEST_ID)
    assert (state.status, state.definition_version, state.process) == (Status.REJECTED, 0, "")
    [turn] = app.turns(REQUEST_ID)
    [_, completed] = turn.events
    assert isinstance(completed, workflow.InstanceCompleted)
    assert completed.reasons[0].field == "request_type"
    with pytest.raises(TriggerRefused):
        app.handle(REQUEST_ID, CloseByCase(case_id=REQUEST_ID), T0)


def test_an_override_retried_with_its_id_is_applied_once(app) -> None:
    app.submit(invoice(), T0)
    skip = SkipStep(step="finance-approval", actor="supervisor", reason="Approved by phone")
    app.handle(REQUEST_ID, skip, T0)
    assert app.handle(REQUEST_ID, skip, T0) == ()  # the retry finds it applied: not refused
    events = [event for turn in app.turns(REQUEST_ID) for event in turn.events]
    assert sum(isinstance(e, workflow.OverrideApplied) for e in events) == 1


def test_the_pending_action_is_the_one_the_engine_asked_for(app) -> None:
    assert not [e for e in app.submit(invoice(), T0) if isinstance(e, RunAction)]
    assert app.pending_action(REQUEST_ID) is None  # it waits for its approval first
    approve = DecideApproval(
        step="finance-approval", decision=ApprovalDecision.APPROVED, actor="grace"
    )
    [asked] = [e for e in app.handle(REQUEST_ID, approve, T0) if isinstance(e, RunAction)]
    assert app.pending_action(REQUEST_ID) == asked


def test_stored_turns_become_envelopes_with_stable_ids(app) -> None:
    app.submit(invoice(), T0)
    [stored] = list(app.repository.event_store.get(instance_id(REQUEST_ID)))
    [message] = to_envelopes(stored)
    assert message.event_type == "workflow.InstanceAdvanced"
    envelopes = expand(message)
    assert [e.event_id for e in envelopes] == [
        stable_event_id(instance_id(REQUEST_ID), 1, i) for i in range(len(envelopes))
    ]
    assert len({e.event_id for e in envelopes}) == len(envelopes)
    [again] = to_envelopes(stored)
    assert again.event_id == message.event_id
    assert [e.event_id for e in expand(again)] == [e.event_id for e in envelopes]
    assert {e.request_id for e in (message, *envelopes)} == {REQUEST_ID}
    assert message.key == envelopes[0].key == str(REQUEST_ID).encode()


# Many at once, and instances held in memory between triggers --------------------------------


@pytest.fixture
def cached_app(shipped) -> WorkflowApplication:
    return WorkflowApplication(
        DefinitionRegistry(shipped.values()), env={"AGGREGATE_CACHE_MAXSIZE": "100"}
    )


def password_reset(request_id: UUID) -> Submit:
    return Submit(
        request_id=request_id,
        request_type="password_reset",
        requester="jdoe@example.com",
        payload={"account": "jdoe", "system": "okta"},
    )


def test_start_all_starts_every_request_and_returns_each_ones_effects(cached_app) -> None:
    ids = [UUID(int=i) for i in range(1, 4)]
    effects = cached_app.start_all(
        [(password_reset(i), T0, None) for i in ids],
        Tracking(application_name="requests:0", notification_id=9),
    )
    assert [{e.request_id for e in started} for started in effects] == [{i} for i in ids]
    assert all(any(isinstance(e, RunAction) for e in started) for started in effects)
    assert cached_app.last_consumed("requests:0") == 9
    with pytest.raises(RecordConflictError):  # one of these has started: nothing is saved
        cached_app.start_all(
            [(password_reset(UUID(int=99)), T0, None), (password_reset(ids[0]), T0, None)],
            Tracking(application_name="requests:0", notification_id=11),
        )
    assert cached_app.last_consumed("requests:0") == 9
    with pytest.raises(InstanceNotFound):
        cached_app.state(UUID(int=99))


def test_handle_all_saves_what_applies_and_reports_what_was_refused(cached_app) -> None:
    ids = [UUID(int=i) for i in range(1, 3)]
    cached_app.start_all(
        [(password_reset(i), T0, None) for i in ids],
        Tracking(application_name="requests:0", notification_id=1),
    )
    done = ReportActionSucceeded(step="reset-password")
    results = cached_app.handle_all(
        [
            (ids[0], done, None),
            (UUID(int=77), done, None),  # no such instance
            # no approval is pending: refused
            (ids[1], DecideApproval(step="x", decision=ApprovalDecision.APPROVED, actor="a"), None),
        ],
        T0,
    )
    assert isinstance(results[0], tuple)
    assert isinstance(results[1], InstanceNotFound)
    assert isinstance(results[2], TriggerRefused)
    assert cached_app.state(ids[0]).status is Status.COMPLETED
    assert cached_app.state(ids[1]).current_step == "reset-password"


def test_instances_in_memory_are_handed_out_as_copies_and_spare_the_projection_a_load(
    cached_app,
) -> None:
    cached_app.submit(invoice(), T0)
    held = cached_app.instance(instance_id(REQUEST_ID), at_least=1)
    assert held.version >= 1
    assert cached_app.instance(instance_id(REQUEST_ID), at_least=held.version) is held

    # A trigger works on a copy: the held instance changes only once the copy is saved.
    copy = cached_app.repository.get(instance_id(REQUEST_ID))
    assert copy is not held
    assert copy.state is held.state
    cached_app.handle(
        REQUEST_ID,
        DecideApproval(step="finance-approval", decision=ApprovalDecision.APPROVED, actor="boss"),
        T0,
    )
    newer = cached_app.instance(instance_id(REQUEST_ID), at_least=held.version + 1)
    assert newer is not held
    assert newer.version > held.version


# Two processes writing one store: what one holds in memory may be behind -----------------------


@pytest.fixture
def two_writers(shipped, tmp_path) -> tuple[WorkflowApplication, WorkflowApplication]:
    """Two applications on one store, each holding the instances it saved in memory, as two
    workflow processes on one database do (SQLite here, for speed)."""
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "workflow.db"),
        "AGGREGATE_CACHE_MAXSIZE": "100",
    }
    return (
        WorkflowApplication(DefinitionRegistry(shipped.values()), env=env),
        WorkflowApplication(DefinitionRegistry(shipped.values()), env=env),
    )


APPROVE = DecideApproval(step="finance-approval", decision=ApprovalDecision.APPROVED, actor="fm")


def test_a_trigger_a_stale_instance_would_ignore_is_decided_on_the_stored_one(
    two_writers,
) -> None:
    first, second = two_writers
    first.submit(invoice(), T0)  # held by the first, waiting for its approval
    second.handle(REQUEST_ID, APPROVE, T0 + timedelta(minutes=1))  # now at schedule-payment
    # The first's copy still waits for the approval and would pass over the action's report.
    report = ReportActionSucceeded(step="schedule-payment")
    first.handle(REQUEST_ID, report, T0 + timedelta(minutes=2))
    assert first.state(REQUEST_ID).status is Status.COMPLETED
    assert second.state(REQUEST_ID).status is Status.COMPLETED


def test_a_stale_instance_that_decides_conflicts_and_the_retry_sees_the_stored_one(
    two_writers,
) -> None:
    first, second = two_writers
    first.submit(invoice(), T0)
    second.handle(REQUEST_ID, APPROVE, T0 + timedelta(minutes=1))
    skip = SkipStep(step="finance-approval", actor="supervisor", reason="Approved by phone")
    with pytest.raises(RecordConflictError):  # decided on the held copy: the store says no
        first.handle(REQUEST_ID, skip, T0 + timedelta(minutes=2))
    with pytest.raises(TriggerRefused):  # the retry decides on what is stored
        first.handle(REQUEST_ID, skip, T0 + timedelta(minutes=2))
    assert first.state(REQUEST_ID).current_step == "schedule-payment"


def test_a_turn_recorded_is_not_read_back_the_engines_state_is_kept(app, monkeypatch) -> None:
    read: list[object] = []
    reading = instance_module._turn

    def counted(*turn: Any) -> Any:
        read.append(turn)
        return reading(*turn)

    monkeypatch.setattr(instance_module, "_turn", counted)
    app.submit(invoice(), T0)
    assert read == []  # one fold per append: the engine's
    # Loaded from the store (this application holds nothing in memory), its one stored turn is
    # read and folded; the turn the approval then causes is recorded as the engine decided it.
    app.handle(REQUEST_ID, APPROVE, T0 + timedelta(hours=1))
    assert len(read) == 1
