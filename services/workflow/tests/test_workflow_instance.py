"""The aggregate in eventsourcing applications (in-memory persistence); the catalogue mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import RecordConflictError, Tracking

from flowcase.events import Envelope, decode, encode
from flowcase.events.catalogue import Outcome, case, intake, workflow
from flowcase.events.catalogue.workflow import ApprovalDecision, StepKind
from flowcase.eventstore import stable_event_id
from flowcase.workflow.application import InstanceNotFound, WorkflowApplication
from flowcase.workflow.catalogue_mapping import (
    close_from,
    definition_published,
    submit_from,
    to_catalogue,
    to_envelopes,
)
from flowcase.workflow.effects import RunAction
from flowcase.workflow.engine import TriggerRefused
from flowcase.workflow.events import InstanceCompleted, OverrideApplied
from flowcase.workflow.instance import WorkflowInstance, fact_of, instance_id
from flowcase.workflow.registry import DefinitionRegistry
from flowcase.workflow.state import Status
from flowcase.workflow.triggers import (
    CloseByCase,
    DecideApproval,
    ReportActionSucceeded,
    SkipStep,
    Submit,
)

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


def test_every_stored_event_maps_to_one_catalogue_event(app) -> None:
    app.submit(invoice(), T0)
    app.handle(
        REQUEST_ID,
        DecideApproval(step="finance-approval", decision=ApprovalDecision.DENIED, actor="fm"),
        T0 + timedelta(hours=1),
    )
    app.handle(REQUEST_ID, CloseByCase(case_id=REQUEST_ID), T0 + timedelta(days=1))
    types, actors = [], []
    for stored in stored_events(app):
        fact = fact_of(stored)
        assert type(fact).__name__ == type(stored).__name__
        catalogued = to_catalogue(fact)
        envelope = Envelope.wrap(
            catalogued.payload,
            source="workflow",
            request_id=REQUEST_ID,
            occurred_at=catalogued.occurred_at,
            actor=catalogued.actor,
        )
        assert decode(encode(envelope)) == envelope
        types.append(envelope.event_type)
        actors.append(envelope.actor)
    assert types[0] == "workflow.InstanceStarted"
    assert types[-4:] == [
        "workflow.ApprovalDecided",
        "workflow.StepCompleted",
        "workflow.EscalatedToCase",
        "workflow.InstanceCompleted",
    ]
    assert actors[-4] == "fm"
    started = to_catalogue(fact_of(stored_events(app)[0])).payload
    assert isinstance(started, workflow.InstanceStarted)
    assert started.instance_id == instance_id(REQUEST_ID)
    assert app.state(REQUEST_ID).status.value == Outcome.RESOLVED_BY_CASE.value


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
    [_, completed] = app.instance_events(REQUEST_ID)
    assert isinstance(completed, InstanceCompleted)
    assert completed.reasons[0].field == "request_type"
    with pytest.raises(TriggerRefused):
        app.handle(REQUEST_ID, CloseByCase(case_id=REQUEST_ID), T0)


def test_an_override_retried_with_its_id_is_applied_once(app) -> None:
    app.submit(invoice(), T0)
    skip = SkipStep(step="finance-approval", actor="supervisor", reason="Approved by phone")
    app.handle(REQUEST_ID, skip, T0)
    assert app.handle(REQUEST_ID, skip, T0) == ()  # the retry finds it applied: not refused
    events = app.instance_events(REQUEST_ID)
    assert sum(isinstance(e, OverrideApplied) for e in events) == 1


def test_the_pending_action_is_the_one_the_engine_asked_for(app) -> None:
    assert not [e for e in app.submit(invoice(), T0) if isinstance(e, RunAction)]
    assert app.pending_action(REQUEST_ID) is None  # it waits for its approval first
    approve = DecideApproval(
        step="finance-approval", decision=ApprovalDecision.APPROVED, actor="grace"
    )
    [asked] = [e for e in app.handle(REQUEST_ID, approve, T0) if isinstance(e, RunAction)]
    assert app.pending_action(REQUEST_ID) == asked


def test_stored_events_become_envelopes_with_stable_ids(app) -> None:
    app.submit(invoice(), T0)
    stored = list(app.repository.event_store.get(instance_id(REQUEST_ID)))
    envelopes = [to_envelopes(event)[0] for event in stored]
    assert [e.event_id for e in envelopes] == [
        stable_event_id(instance_id(REQUEST_ID), v) for v in range(1, len(stored) + 1)
    ]
    assert {e.request_id for e in envelopes} == {REQUEST_ID}
    assert [decode(encode(e)) for e in envelopes] == envelopes


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
    copy.override_ids.add(UUID(int=5))
    assert UUID(int=5) not in held.override_ids
    cached_app.handle(
        REQUEST_ID,
        DecideApproval(step="finance-approval", decision=ApprovalDecision.APPROVED, actor="boss"),
        T0,
    )
    newer = cached_app.instance(instance_id(REQUEST_ID), at_least=held.version + 1)
    assert newer is not held
    assert newer.version > held.version
