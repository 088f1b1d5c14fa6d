"""The case application: load, act, save; one case per escalation; stale writes; snapshots."""

from __future__ import annotations

import hashlib
from functools import reduce
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from flowcase.case.aggregate import Case
from flowcase.case.application import SNAPSHOT_INTERVAL, CaseApplication
from flowcase.case.commands import (
    AddNote,
    AddTask,
    ApplyOverride,
    Assign,
    AttachEvidence,
    ChangeStatus,
    Claim,
    CompleteTask,
    LogCommunication,
    RecordDecision,
    Resolve,
    SetMilestone,
)
from flowcase.case.errors import CaseNotFound, IllegalTransition, StaleVersion
from flowcase.events.catalogue.case import CaseStatus, Direction
from flowcase.events.catalogue.workflow import EscalatedToCase

SHA = hashlib.sha256(b"IdP log export").hexdigest()


def replayed(app: CaseApplication, case_id: UUID) -> Case:
    """The case rebuilt from every stored event, ignoring snapshots."""
    case = reduce(lambda state, event: event.mutate(state), app.history(case_id), None)
    assert isinstance(case, Case)
    return case


def test_an_escalation_delivered_twice_opens_one_case(
    app: CaseApplication, escalation: EscalatedToCase
) -> None:
    first = app.open_from_escalation(escalation)
    second = app.open_from_escalation(escalation)

    assert first == second
    assert [type(e) for e in app.events.get(first)] == [Case.CaseOpened]
    assert app.get_case(first).request_id == escalation.request_id


def test_a_tracked_escalation_records_its_message_with_the_opening(
    app: CaseApplication, escalation: EscalatedToCase
) -> None:
    delivered = Tracking(application_name="flowcase.workflow.events:0", notification_id=7)
    republished = Tracking(application_name="flowcase.workflow.events:0", notification_id=9)

    case_id = app.open_from_escalation(escalation, tracking=delivered)
    assert app.open_from_escalation(escalation, tracking=delivered) == case_id
    assert app.open_from_escalation(escalation, tracking=republished) == case_id

    assert [type(e) for e in app.events.get(case_id)] == [Case.CaseOpened]
    assert app.consumed(delivered)
    assert app.consumed(republished)


def test_case_ids_lists_every_case_once_in_opening_order(app: CaseApplication) -> None:
    first = app.open_case("One", actor="sup-1")
    second = app.open_case("Two", actor="sup-1")
    app.execute(first, AddNote(text="more", expected_version=1), actor="sup-1")

    assert list(app.case_ids(batch_size=1)) == [first, second]
    assert [e.originator_version for e in app.history(first)] == [1, 2]
    with pytest.raises(CaseNotFound):
        app.history(uuid4())


def test_a_redelivery_after_work_began_changes_nothing(
    app: CaseApplication, escalation: EscalatedToCase
) -> None:
    case_id = app.open_from_escalation(escalation)
    app.execute(case_id, AddNote(text="first look", expected_version=1), actor="agent-1")

    assert app.open_from_escalation(escalation) == case_id
    case = app.get_case(case_id)
    assert case.version == 2
    assert list(case.notes) == ["n-1"]


def test_every_command_through_the_application(app: CaseApplication) -> None:
    case_id = app.open_case("Payroll lockout", actor="sup-1", priority="high")
    steps = [
        ("sup-1", Assign(team="it-security", assignee="agent-42")),
        ("agent-7", Claim()),
        ("agent-7", ChangeStatus(to_status=CaseStatus.INVESTIGATING)),
        ("agent-7", AddNote(text="5 failed MFA prompts")),
        (
            "agent-7",
            LogCommunication(
                direction=Direction.OUTBOUND, channel="email", parties=["jdoe"], summary="Asked"
            ),
        ),
        ("agent-7", AttachEvidence(reference="s3://idp.json", sha256=SHA)),
        ("agent-7", AddTask(title="Pull IdP logs")),
        ("agent-7", CompleteTask(task_id="t-1", result="done")),
        ("agent-7", SetMilestone(milestone="root-cause-found")),
        (
            "sup-1",
            RecordDecision(
                decision="Restore access", rationale="Token fault", relied_on=["n-1", "e-1"]
            ),
        ),
        (
            "sup-1",
            ApplyOverride(target="sla", rationale="Agreed later date", relied_on=["m-1"]),
        ),
        (
            "agent-7",
            Resolve(
                outcome_code="access_restored", rationale="Confirmed", relied_on=["d-1", "m-1"]
            ),
        ),
        ("sup-1", ChangeStatus(to_status=CaseStatus.CLOSED)),
    ]
    version = 1
    entry_ids = []
    for actor, command in steps:
        recorded = app.execute(
            case_id, command.model_copy(update={"expected_version": version}), actor=actor
        )
        assert recorded.case_id == case_id
        assert recorded.version == version + 1
        version = recorded.version
        entry_ids.append(recorded.entry_id)

    assert [i for i in entry_ids if i] == ["n-1", "m-1", "e-1", "t-1", "d-1", "o-1"]
    case = app.get_case(case_id)
    assert case.status is CaseStatus.CLOSED
    assert case.version == len(steps) + 1
    assert case.tasks["t-1"].completed
    assert app.verify_chain(case_id).intact


def test_a_stale_version_is_refused_and_changes_nothing(app: CaseApplication) -> None:
    case_id = app.open_case("Payroll lockout", actor="sup-1")
    app.execute(case_id, AddNote(text="first", expected_version=1), actor="agent-1")

    with pytest.raises(StaleVersion) as refused:
        app.execute(
            case_id, AddNote(text="based on an old read", expected_version=1), actor="agent-2"
        )

    assert (refused.value.expected, refused.value.actual) == (1, 2)
    case = app.get_case(case_id)
    assert case.version == 2
    assert list(case.notes) == ["n-1"]


def test_a_writer_that_loses_the_race_to_save_gets_stale_version(
    app: CaseApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = app.open_case("Payroll lockout", actor="sup-1")
    # The loser read version 1 before the winner saved version 2, and saves after it.
    read_before_the_winner = iter([app.get_case(case_id)])
    app.execute(case_id, AddNote(text="winner", expected_version=1), actor="agent-1")
    read = app.repository.get
    monkeypatch.setattr(
        app.repository, "get", lambda case_id: next(read_before_the_winner, None) or read(case_id)
    )

    with pytest.raises(StaleVersion) as refused:
        app.execute(case_id, AddNote(text="loser", expected_version=1), actor="agent-2")

    assert (refused.value.expected, refused.value.actual) == (1, 2)
    assert [note.text for note in app.get_case(case_id).notes.values()] == ["winner"]


def test_a_refused_command_records_nothing(app: CaseApplication) -> None:
    case_id = app.open_case("Payroll lockout", actor="sup-1")
    with pytest.raises(IllegalTransition):
        app.execute(
            case_id, ChangeStatus(to_status=CaseStatus.CLOSED, expected_version=1), actor="sup-1"
        )
    assert app.get_case(case_id).version == 1


def test_an_unknown_case_is_not_found(app: CaseApplication) -> None:
    missing = uuid4()
    with pytest.raises(CaseNotFound):
        app.get_case(missing)
    with pytest.raises(CaseNotFound):
        app.execute(missing, AddNote(text="x", expected_version=1), actor="agent-1")
    with pytest.raises(CaseNotFound):
        app.verify_chain(missing)


def long_case(app: CaseApplication, events: int) -> UUID:
    case_id = app.open_case("Long investigation", actor="sup-1")
    for version in range(1, events):
        app.execute(
            case_id, AddNote(text=f"note {version}", expected_version=version), actor="agent-1"
        )
    return case_id


def test_a_long_case_loads_from_its_snapshot_and_equals_the_full_replay(
    app: CaseApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = long_case(app, SNAPSHOT_INTERVAL * 2 + 7)
    app.execute(
        case_id,
        RecordDecision(
            decision="d",
            rationale="r",
            relied_on=["n-1"],
            expected_version=SNAPSHOT_INTERVAL * 2 + 7,
        ),
        actor="sup-1",
    )
    assert app.snapshots is not None
    snapshot_versions = [s.originator_version for s in app.snapshots.get(case_id)]
    assert snapshot_versions == [SNAPSHOT_INTERVAL, SNAPSHOT_INTERVAL * 2]

    replayed_events: list[int | None] = []
    read_events = app.events.get

    def spy(originator_id: UUID, **kwargs: Any) -> object:
        replayed_events.append(kwargs.get("gt"))
        return read_events(originator_id, **kwargs)

    monkeypatch.setattr(app.repository.event_store, "get", spy)
    loaded = app.get_case(case_id)
    monkeypatch.undo()

    assert replayed_events == [SNAPSHOT_INTERVAL * 2]
    assert loaded == replayed(app, case_id)
    assert loaded.version == SNAPSHOT_INTERVAL * 2 + 8
    assert loaded.notes["n-1"].by == "agent-1"
    assert loaded.status is CaseStatus.OPEN


def test_commands_keep_working_on_a_case_loaded_from_a_snapshot(app: CaseApplication) -> None:
    case_id = long_case(app, SNAPSHOT_INTERVAL)
    app.execute(case_id, AddTask(title="t", expected_version=SNAPSHOT_INTERVAL), actor="agent-1")
    app.execute(
        case_id,
        CompleteTask(task_id="t-1", expected_version=SNAPSHOT_INTERVAL + 1),
        actor="agent-1",
    )
    assert app.verify_chain(case_id).intact
    assert app.get_case(case_id) == replayed(app, case_id)
