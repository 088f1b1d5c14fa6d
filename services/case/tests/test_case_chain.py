"""The audit chain: its canonical form, verification finding the first break, and the anchored
head that a chain rewritten with recomputed hashes no longer reaches."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from flowcase.case.application import CaseApplication
from flowcase.case.chain import (
    GENESIS,
    BreakKind,
    ChainAnchor,
    ChainRecord,
    NotAnExtension,
    canonical_form,
    expected_hash,
    extend,
    link,
    verify_chain,
)
from flowcase.case.commands import AddNote

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
        app.execute(
            case_id, AddNote(text=f"note {version}", expected_version=version), actor="agent-1"
        )
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
    app.execute(case_id, AddNote(text="note", expected_version=1), actor="agent-1")
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


# Against an anchor: what someone who can write the database but holds no key can do.


def rewritten(records: list[ChainRecord], at: int) -> list[ChainRecord]:
    """The chain with the note at version `at` edited and every hash from there recomputed."""
    case_id = case_of(records)
    chain = records[: at - 1]
    previous = chain[-1].state["chain_hash"] if chain else GENESIS
    for record in records[at - 1 :]:
        state = dict(record.state)
        if record.version == at:
            state["text"] = "nothing to see"
        state["chain_hash"] = previous = expected_hash(
            previous, case_id, record._replace(state=state)
        )
        chain.append(record._replace(state=state))
    return chain


def anchor_of(record: ChainRecord) -> ChainAnchor:
    return ChainAnchor(record.version, record.state["chain_hash"])


def test_a_chain_that_reaches_its_anchor_verifies(records: list[ChainRecord]) -> None:
    for anchored in (records[-1], records[3]):  # events after the anchor are not anchored yet
        report = verify_chain(case_of(records), records, anchor_of(anchored))
        assert report.intact
        assert (report.verified, report.anchored) == (6, anchored.version)
    assert verify_chain(case_of(records), records).anchored is None


def test_a_tail_rewritten_with_its_hashes_recomputed_holds_but_not_to_its_anchor(
    records: list[ChainRecord],
) -> None:
    tampered = rewritten(records, at=3)
    assert verify_chain(case_of(records), tampered).intact  # all the keyless chain can tell

    report = verify_chain(case_of(records), tampered, anchor_of(records[4]))

    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (5, BreakKind.REWRITTEN)
    assert (report.verified, report.head) == (0, GENESIS)
    # A rewrite after the anchored version is beyond what the anchor vouches for.
    assert verify_chain(case_of(records), rewritten(records, at=6), anchor_of(records[4])).intact


def test_deleting_the_latest_events_falls_short_of_the_anchor(records: list[ChainRecord]) -> None:
    assert verify_chain(case_of(records), records[:3]).intact  # all the keyless chain can tell

    report = verify_chain(case_of(records), records[:3], anchor_of(records[-1]))

    assert report.broken is not None
    assert (report.broken.version, report.broken.kind) == (4, BreakKind.MISSING)
    assert report.verified == 3
    assert "version 6 was anchored, but the stored chain ends at version 3" in report.broken.detail
    gone = verify_chain(case_of(records), [], anchor_of(records[-1]))
    assert gone.broken is not None
    assert (gone.broken.version, gone.broken.kind) == (1, BreakKind.MISSING)


def test_an_anchor_moves_along_the_chain_it_anchored(records: list[ChainRecord]) -> None:
    case_id = case_of(records)
    assert extend(case_id, None, records[:2]) == anchor_of(records[1])
    assert extend(case_id, anchor_of(records[1]), records[2:]) == anchor_of(records[-1])
    # The log read again from an earlier position: the anchored event still carries its hash.
    assert extend(case_id, anchor_of(records[3]), records) == anchor_of(records[-1])
    assert extend(case_id, anchor_of(records[-1]), records[:4]) == anchor_of(records[-1])


@pytest.mark.parametrize(
    ("stored", "anchored_at", "refusal"),
    [
        pytest.param(
            lambda records: rewritten(records, at=3),
            5,
            "version 5 no longer carries its anchored hash",
            id="replayed after a rewrite",
        ),
        pytest.param(
            lambda records: rewritten(records, at=3)[5:],
            5,
            "version 6 does not continue the chain from version 5",
            id="appended to a rewrite",
        ),
        pytest.param(lambda records: records[5:], 4, "version 5 is missing", id="after a gap"),
        pytest.param(
            lambda records: records[1:], None, "version 1 is missing", id="without its opening"
        ),
    ],
)
def test_an_anchor_never_moves_to_a_chain_that_does_not_continue_it(
    records: list[ChainRecord],
    stored: Callable[[list[ChainRecord]], list[ChainRecord]],
    anchored_at: int | None,
    refusal: str,
) -> None:
    anchor = anchor_of(records[anchored_at - 1]) if anchored_at else None
    with pytest.raises(NotAnExtension, match=refusal):
        extend(case_of(records), anchor, stored(records))
