"""Every stored case event maps one to one onto its catalogue payload."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime

from flowcase.case.aggregate import Case
from flowcase.case.application import CaseApplication
from flowcase.case.catalogue_mapping import CATALOGUE, to_catalogue, to_envelopes
from flowcase.events.catalogue import case as catalogue
from flowcase.events.catalogue.base import EventPayload
from flowcase.events.catalogue.workflow import EscalatedToCase
from flowcase.events.topics import Topic
from flowcase.eventstore import stable_event_id

SHA = hashlib.sha256(b"IdP log export").hexdigest()
# Event fields that are not payload: library bookkeeping, the envelope's actor and time, the chain.
# `request_id` is on every event for the envelope, and in the payloads that declare it.
NOT_PAYLOAD = {
    "originator_id",
    "originator_version",
    "originator_topic",
    "timestamp",
    "actor",
    "chain_hash",
}


def test_every_catalogued_case_payload_has_its_event_with_the_same_fields() -> None:
    # The stored events' payloads: the anchored chain heads go on a topic of their own.
    payloads = {
        model
        for model in vars(catalogue).values()
        if isinstance(model, type)
        and issubclass(model, EventPayload)
        and getattr(model, "topic", None) == Topic.CASE_EVENTS
    }
    assert set(CATALOGUE.values()) == payloads
    for event_class, model in CATALOGUE.items():
        assert event_class.__name__ == model.__name__
        event_fields = {f.name for f in dataclasses.fields(event_class)} - NOT_PAYLOAD
        assert "request_id" in event_fields, event_class.__name__
        payload_fields = set(model.model_fields)
        assert event_fields | {"case_id"} == payload_fields | {"request_id"}, event_class.__name__


def a_full_case(app: CaseApplication, escalation: EscalatedToCase) -> Case:
    promised = datetime(2026, 11, 24, 13, tzinfo=UTC)
    case_id = app.open_from_escalation(escalation.model_copy(update={"due_at": promised}))
    case = app.get_case(case_id)
    case.assign("it-security", "agent-42", actor="sup-1")
    case.claim(actor="agent-7")
    case.change_status("investigating", actor="agent-7")
    case.add_note("5 failed MFA prompts", actor="agent-7")
    case.log_communication("outbound", "email", ["jdoe"], "Asked", actor="agent-7")
    case.attach_evidence("s3://idp.json", SHA, actor="agent-7")
    case.add_task("Pull IdP logs", actor="agent-7")
    case.complete_task("t-1", actor="agent-7")
    case.set_milestone("root-cause-found", actor="agent-7")
    case.record_broken_promise(promised)
    case.pause_clock("Waiting for the requester", actor="agent-7")
    case.resume_clock(actor="agent-7")
    case.record_decision("Restore access", "Token fault", ["n-1", "e-1"], actor="sup-1")
    case.apply_override("sla", gap_acknowledged=True, actor="sup-1")
    case.resolve("access_restored", "Confirmed", ["d-1", "m-1"], actor="agent-7")
    app.save(case)
    return case


def test_stored_events_become_catalogue_payloads(
    app: CaseApplication, escalation: EscalatedToCase
) -> None:
    case = a_full_case(app, escalation)
    stored: list[Case.Event] = []
    for notification in app.recorder.select_notifications(start=None, limit=100):
        event = app.mapper.to_domain_event(notification)
        assert isinstance(event, Case.Event)
        stored.append(event)

    publications = [to_catalogue(event) for event in stored]

    assert {type(p.payload) for p in publications} == set(CATALOGUE.values())
    assert all(p.payload.case_id == case.id for p in publications)  # type: ignore[attr-defined]
    opened, *_, resolved = publications
    assert isinstance(opened.payload, catalogue.CaseOpened)
    assert opened.payload.workflow_history[0].step == "check-fields"
    assert opened.actor is None
    assert isinstance(resolved.payload, catalogue.CaseResolved)
    assert resolved.payload.request_id == escalation.request_id
    assert (resolved.actor, resolved.occurred_at) == ("agent-7", stored[-1].timestamp)
    override = publications[-2].payload
    assert isinstance(override, catalogue.CaseOverrideApplied)
    assert override.event_type == "case.OverrideApplied"
    assert override.gap_acknowledged is True
    assert {p.request_id for p in publications} == {escalation.request_id}


def test_every_envelope_carries_the_request_actor_event_time_and_a_stable_id(
    app: CaseApplication, escalation: EscalatedToCase
) -> None:
    case = a_full_case(app, escalation)
    stored = app.history(case.id)

    envelopes = [envelope for event in stored for envelope in to_envelopes(event)]

    assert [e.event_type for e in envelopes][:2] == ["case.CaseOpened", "case.CaseAssigned"]
    assert all(e.request_id == escalation.request_id for e in envelopes)
    assert all(e.source == "case" and e.key == str(case.id).encode() for e in envelopes)
    assert [e.actor for e in envelopes][:3] == [None, "sup-1", "agent-7"]
    assert [e.occurred_at for e in envelopes] == [event.timestamp for event in stored]
    assert [e.event_id for e in envelopes] == [
        stable_event_id(case.id, version) for version in range(1, case.version + 1)
    ]


def test_a_manual_case_without_a_request_has_no_request_id(app: CaseApplication) -> None:
    case_id = app.open_case("Walk-in complaint", actor="agent-1")
    (envelope,) = to_envelopes(next(iter(app.events.get(case_id))))
    assert envelope.request_id is None
    assert envelope.actor == "agent-1"


def test_a_stored_event_always_gets_the_same_event_id(
    app: CaseApplication, escalation: EscalatedToCase
) -> None:
    case = a_full_case(app, escalation)

    def event_ids() -> list[object]:
        return [to_catalogue(event).event_id for event in app.history(case.id)]

    assert event_ids() == event_ids()
    assert len(set(event_ids())) == case.version
