"""The audit chain: its canonical form, and verification finding the first break."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from flowcase.case.application import CaseApplication
from flowcase.case.chain import (
    GENESIS,
    BreakKind,
    ChainRecord,
    canonical_form,
    link,
    verify_chain,
)

CASE_ID = UUID("c2a9e1f0-4b3d-5e6f-8a7b-9c0d1e2f3a4b")
# What a decoded domain event holds beyond its stored state: the row's key columns.
COLUMNS = {"originator_id", "originator_version"}


def test_the_canonical_form_is_the_documented_json() -> None:
    canonical = canonical_form(
        topic="flowcase.case.aggregate:Case.NoteAdded",
        originator_id=CASE_ID,
        version=2,
        timestamp=datetime(2026, 11, 24, 9, 15, tzinfo=UTC),
        actor="agent-42",
        fields={"text": "Café closed", "note_id": "n-1", "ref": CASE_ID},
    )
    assert (
        canonical
        == (
            '{"actor":"agent-42",'
            '"fields":{"note_id":"n-1",'
            '"ref":"c2a9e1f0-4b3d-5e6f-8a7b-9c0d1e2f3a4b","text":"Café closed"},'
            '"originator_id":"c2a9e1f0-4b3d-5e6f-8a7b-9c0d1e2f3a4b",'
            '"timestamp":"2026-11-24T09:15:00.000000+00:00",'
            '"type":"flowcase.case.aggregate:Case.NoteAdded",'
            '"version":2}'
        ).encode()
    )
    assert link(GENESIS, canonical) == hashlib.sha256(b"0" * 64 + canonical).hexdigest()


def test_the_canonical_form_refuses_values_without_one() -> None:
    def form(value: object) -> bytes:
        return canonical_form(
            topic="t",
            originator_id=CASE_ID,
            version=1,
            timestamp=datetime(2026, 11, 24, tzinfo=UTC),
            actor=None,
            fields={"value": value},
        )

    for value in (float("nan"), datetime(2026, 11, 24), object()):
        with pytest.raises((TypeError, ValueError)):
            form(value)


@pytest.fixture
def records(app: CaseApplication) -> list[ChainRecord]:
    case_id = app.open_case("Payroll lockout", actor="sup-1")
    for version in range(1, 6):
        app.add_note(case_id, f"note {version}", actor="agent-1", expected_version=version)
    return app.chain_records(case_id)


def case_of(records: list[ChainRecord]) -> UUID:
    case_id = records[0].state["originator_id"]
    assert isinstance(case_id, UUID)
    return case_id


def test_an_untouched_case_verifies(app: CaseApplication, records: list[ChainRecord]) -> None:
    report = verify_chain(case_of(records), records)

    assert report.intact
    assert report.verified == 6
    assert report.head == records[-1].state["chain_hash"]
    assert report.head == app.get_case(case_of(records)).chain_head


def test_verification_takes_the_stored_state_alone(records: list[ChainRecord]) -> None:
    # As a row decodes: the state without the originator id and version held in its columns.
    rows = [
        (r.version, r.topic, {k: v for k, v in r.state.items() if k not in COLUMNS})
        for r in records
    ]
    assert verify_chain(case_of(records), rows).intact


def test_a_modified_event_breaks_the_chain_there(records: list[ChainRecord]) -> None:
    tampered = list(records)
    tampered[2] = records[2]._replace(state={**records[2].state, "text": "nothing to see"})

    report = verify_chain(case_of(records), tampered)

    assert not report.intact
    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (3, BreakKind.MODIFIED)
    assert report.verified == 2
    assert report.head == records[1].state["chain_hash"]


@pytest.mark.parametrize("key", ["actor", "timestamp", "chain_hash"])
def test_tampering_with_who_when_or_the_hash_is_a_modification(
    records: list[ChainRecord], key: str
) -> None:
    changed = {"actor": "someone-else", "timestamp": datetime(2020, 1, 1, tzinfo=UTC)}
    tampered = list(records)
    tampered[3] = records[3]._replace(state={**records[3].state, key: changed.get(key, "0" * 64)})

    report = verify_chain(case_of(records), tampered)

    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (4, BreakKind.MODIFIED)


def test_a_modified_topic_is_a_modification(records: list[ChainRecord]) -> None:
    tampered = list(records)
    tampered[1] = records[1]._replace(topic="flowcase.case.aggregate:Case.MilestoneSet")
    report = verify_chain(case_of(records), tampered)
    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (2, BreakKind.MODIFIED)


def test_an_event_of_another_case_is_a_modification(records: list[ChainRecord]) -> None:
    report = verify_chain(UUID(int=1), records)
    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (1, BreakKind.MODIFIED)


def test_a_deleted_event_leaves_a_gap(records: list[ChainRecord]) -> None:
    report = verify_chain(case_of(records), records[:3] + records[4:])

    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (4, BreakKind.MISSING)
    assert report.verified == 3
    assert "next stored event is version 5" in report.broken.detail


def test_a_deleted_opening_leaves_a_gap(records: list[ChainRecord]) -> None:
    report = verify_chain(case_of(records), records[1:])
    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (1, BreakKind.MISSING)


def test_swapped_events_are_reported_as_reordered(records: list[ChainRecord]) -> None:
    # Two rows swap versions in the database: read in version order, their states trade places.
    third, fourth = records[2], records[3]
    swapped = list(records)
    swapped[2] = third._replace(topic=fourth.topic, state=fourth.state)
    swapped[3] = fourth._replace(topic=third.topic, state=third.state)

    report = verify_chain(case_of(records), swapped)

    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (3, BreakKind.REORDERED)
    assert "recorded as version 3 is stored as version 4" in report.broken.detail


def test_events_given_out_of_version_order_are_reordered(records: list[ChainRecord]) -> None:
    shuffled = [records[0], records[2], records[1], *records[3:]]
    report = verify_chain(case_of(records), shuffled)
    assert report.broken is not None
    assert report.broken.kind == BreakKind.MISSING
    report = verify_chain(case_of(records), [records[0], records[1], records[1]])
    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (3, BreakKind.REORDERED)


def test_an_empty_chain_verifies_nothing() -> None:
    report = verify_chain(CASE_ID, [])
    assert report.intact
    assert (report.verified, report.head) == (0, GENESIS)


def test_a_row_that_no_longer_decodes_breaks_the_chain(app: CaseApplication) -> None:
    case_id = app.open_case("Payroll lockout", actor="sup-1")
    app.add_note(case_id, "note", actor="agent-1", expected_version=1)
    topic = app.chain_records(case_id)[1].topic
    app.recorder.insert_events([StoredEvent(case_id, 3, topic, b"{not json")])

    report = app.verify_chain(case_id)

    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (3, BreakKind.MODIFIED)
    assert report.verified == 2


def test_an_event_appended_without_the_chain_is_detected(app: CaseApplication) -> None:
    case_id = app.open_case("Payroll lockout", actor="sup-1")
    forged = app.chain_records(case_id)[0]
    state = {k: v for k, v in forged.state.items() if k not in COLUMNS}
    stored = app.mapper.transcoder.encode({**state, "chain_hash": GENESIS})
    app.recorder.insert_events([StoredEvent(case_id, 2, forged.topic, stored)])

    report = app.verify_chain(case_id)

    assert report.broken is not None
    assert report.broken.version == 2
