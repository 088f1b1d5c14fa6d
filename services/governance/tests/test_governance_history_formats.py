"""The history readers and the OCEL 2.0 writer, without servers: CSV, JSON lines and OCEL 2.0
into catalogue envelopes (every invalid record reported with where and why), and the facts
back out as entries that state them again."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO
from uuid import UUID, uuid5

import pytest

from flowcase.events import Envelope, encode
from flowcase.events.catalogue import case, intake, workflow
from flowcase.governance import (
    Granularity,
    fold,
    measure,
    process_types,
    resolution_drift,
    series,
    window_of,
)
from flowcase.governance.activity_log import (
    NAMESPACE,
    Activity,
    EntryError,
    LogEntry,
    entries_of,
    entry_of,
    envelope_of,
)
from flowcase.governance.facts import AuditKind, Facts, Missing
from flowcase.governance.log_readers import (
    CSV_COLUMNS,
    Rejected,
    read_csv,
    read_jsonl,
    utf8_problem,
)
from flowcase.governance.ocel2 import read_ocel2, read_ocel2_file, write_ocel2

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "history.csv"
MONDAY_ISO = "2026-11-23"


def envelopes(parsed: list[Envelope | Rejected]) -> list[Envelope]:
    assert [p for p in parsed if isinstance(p, Rejected)] == []
    return [p for p in parsed if isinstance(p, Envelope)]


def test_the_example_csv_parses_whole_and_shows_a_drift_in_claims_only() -> None:
    with EXAMPLE.open(newline="") as f:
        events = envelopes(list(read_csv(f)))
    assert len(events) == len(EXAMPLE.read_text().splitlines()) - 1
    facts = fold(events)
    assert process_types(facts) == ["claims", "refunds"]
    first = min(e.occurred_at for e in events)
    flagged = {
        t: resolution_drift(
            series(facts, t, Granularity.DAY, first, first + timedelta(days=6))
        ).flagged
        for t in ("claims", "refunds")
    }
    assert flagged == {"claims": True, "refunds": False}


def test_csv_rows_map_deterministically_to_catalogue_events() -> None:
    request_id = "7d3c1a8e-0b6f-4f55-9c2e-1f0a2b3c4d5e"
    text = (
        "activity,timestamp,request_id,case_id,process_type,actor,relied_on\n"
        f"request_submitted,2026-11-23T09:00:00Z,INV-1,,invoice,clerk,\n"
        f"request_submitted,2026-11-23T10:00:00+01:00,{request_id},,invoice,,\n"
        "case_opened,2026-11-23T09:30:00Z,INV-1,C-9,invoice,,\n"
        "decision_recorded,2026-11-23T11:00:00Z,,C-9,,agent,note-1; evidence-2\n"
    )
    first = envelopes(list(read_csv(text.splitlines(keepends=True))))
    again = envelopes(list(read_csv(text.splitlines(keepends=True))))
    # Same file, same events: event ids come from the content, not from the reading.
    assert [e.event_id for e in first] == [e.event_id for e in again]
    submitted, by_uuid, opened, decided = first
    assert isinstance(submitted.payload, intake.RequestSubmitted)
    assert submitted.payload.request_id == uuid5(NAMESPACE, "request:INV-1")
    assert submitted.payload.requester == "clerk"
    assert submitted.source == "governance-import"
    assert isinstance(by_uuid.payload, intake.RequestSubmitted)
    assert by_uuid.payload.request_id == UUID(request_id)
    assert by_uuid.occurred_at.isoformat() == "2026-11-23T09:00:00+00:00"
    assert isinstance(opened.payload, case.CaseOpened)
    assert opened.payload.case_id == uuid5(NAMESPACE, "case:C-9")
    assert opened.payload.request_id == submitted.payload.request_id
    assert opened.payload.origin == "escalation"
    assert isinstance(decided.payload, case.DecisionRecorded)
    assert decided.actor == "agent"
    assert decided.payload.relied_on == ["note-1", "evidence-2"]


def test_invalid_csv_rows_are_reported_with_their_line_and_the_valid_ones_kept() -> None:
    text = (
        "timestamp,activity,request_id,process_type,step_kind,rationale\n"
        "2026-11-23T09:00:00Z,request_submitted,R-1,invoice,,\n"
        "yesterday,request_submitted,R-2,invoice,,\n"
        "2026-11-23T09:00:00,request_submitted,R-3,invoice,,\n"
        "2026-11-23T09:00:00Z,submitted,R-4,invoice,,\n"
        "\n"
        "2026-11-23T09:00:00Z,request_submitted,,invoice,,\n"
        "2026-11-23T09:00:00Z,step_entered,R-1,,teleport,\n"
        "2026-11-23T09:00:00Z,override_applied,R-1,,,\n"
        '2026-11-23T09:00:00Z,request_submitted,R-5,invoice,,"a, b",extra\n'
        "2026-11-23T10:00:00Z,instance_completed,R-1,,,\n"
    )
    parsed = list(read_csv(text.splitlines(keepends=True)))
    rejected = [str(p) for p in parsed if isinstance(p, Rejected)]
    assert rejected == [
        "line 3: timestamp: not an ISO 8601 time: 'yesterday'",
        "line 4: timestamp: '2026-11-23T09:00:00' has no time zone "
        "(write e.g. 2026-11-24T09:15:00Z)",
        "line 5: activity: 'submitted' is not one of " + ", ".join(Activity),
        "line 7: request_id: required for request_submitted",
        "line 8: step_kind: 'teleport' is not one of "
        "validate, route, sla, approval, action, notify, branch, escalate",
        "line 10: 7 values for 6 columns",
    ]
    assert [type(p.payload) for p in parsed if isinstance(p, Envelope)] == [
        intake.RequestSubmitted,
        workflow.OverrideApplied,  # line 9: without a reason, kept (an audit gap, not an error)
        workflow.InstanceCompleted,
    ]


def test_a_csv_header_with_an_unknown_or_missing_column_rejects_the_file() -> None:
    parsed = list(read_csv(["timestamp,activity,request,process_type\n", "x,y,z,w\n"]))
    assert len(parsed) == 1
    assert isinstance(parsed[0], Rejected)
    assert parsed[0].where == "line 1"
    assert "unknown column(s) request" in parsed[0].reason
    (missing,) = read_csv(["activity,request_id\n"])
    assert isinstance(missing, Rejected)
    assert "missing column(s) timestamp" in missing.reason


def test_json_lines_are_envelopes_as_encoded_and_bad_lines_say_why(
    make_workload: Callable[..., list[Envelope]],
) -> None:
    events = make_workload(days=1)
    lines = [encode(e) + b"\n" for e in events]
    lines[3:3] = [b"\n", b'{"event_type": "nope.Nothing", "schema_version": 1}\n', b"[1]\n"]
    parsed = list(read_jsonl(lines))
    rejected = [p for p in parsed if isinstance(p, Rejected)]
    assert [(r.where, r.reason.split(":")[0]) for r in rejected] == [
        ("line 5", "unknown-event-type"),
        ("line 6", "malformed"),
    ]
    assert [p for p in parsed if isinstance(p, Envelope)] == events


def test_entry_fields_parse_or_say_which_field_is_wrong() -> None:
    entry = entry_of(
        {
            "activity": "case_resolved",
            "timestamp": "2026-11-23T09:00:00+02:00",
            "case_id": "C-1",
            "gap_acknowledged": "yes",
            "definition_version": "3",
            "relied_on": ["a", " ", "b"],
        }
    )
    assert entry.gap_acknowledged is True
    assert entry.definition_version == 3
    assert entry.relied_on == ("a", "b")
    with pytest.raises(EntryError, match="definition_version: 'v3' is not a whole number"):
        entry_of(
            {
                "activity": "instance_started",
                "timestamp": "2026-11-23T09:00:00Z",
                "definition_version": "v3",
            }
        )
    with pytest.raises(EntryError, match="gap_acknowledged: 'maybe' is not true or false"):
        entry_of(
            {
                "activity": "case_resolved",
                "timestamp": "2026-11-23T09:00:00Z",
                "gap_acknowledged": "maybe",
            }
        )
    with pytest.raises(EntryError, match="timestamp: missing"):
        entry_of({"activity": "case_resolved"})


def figures(facts: Facts) -> dict[str, list]:
    """Every process type's day series over the designed week: the figures to compare."""
    from flowcase.governance.windows import window_of

    instants = [r.submitted_at for r in facts.requests.values() if r.submitted_at]
    first, last = min(instants), max(instants)
    assert window_of(first, Granularity.DAY).start.date().isoformat() == MONDAY_ISO
    return {t: series(facts, t, Granularity.DAY, first, last) for t in process_types(facts)}


def test_the_facts_exported_as_entries_state_the_same_figures_again(
    make_workload: Callable[..., list[Envelope]],
) -> None:
    facts = fold(make_workload())
    restated = fold(envelope_of(entry) for entry in entries_of(facts))
    assert figures(restated) == figures(facts)
    # The facts themselves, but for the ids of the events that stated them.
    assert restated.requests.keys() == facts.requests.keys()
    assert restated.steps.keys() == facts.steps.keys()
    assert restated.overrides == facts.overrides
    assert restated.audit.keys() == facts.audit.keys()
    assert restated.cases.keys() == facts.cases.keys()


def test_the_export_names_each_request_by_the_id_its_source_knew_it_by() -> None:
    text = (
        "timestamp,activity,request_id,process_type\n"
        "2026-11-23T09:00:00Z,request_submitted,CLM-103,claims\n"
        "2026-11-23T09:05:00Z,request_submitted,6e0c1d2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f,claims\n"
    )
    imported = [p for p in read_csv(text.splitlines(keepends=True)) if isinstance(p, Envelope)]
    live = Envelope.wrap(
        intake.RequestSubmitted(
            request_id=uuid5(NAMESPACE, "live"),
            submission_id="crm-48213",
            request_type="claims",
            requester="erp",
            priority="normal",
            submitted_at=imported[0].occurred_at,
            channel="http",
            payload={},
        ),
        source="intake",
    )

    document = write_ocel2(entries_of(fold([*imported, live])))

    submitted_as = {
        o["id"]: [a["value"] for a in o["attributes"] if a["name"] == "submission_id"]
        for o in document["objects"]
    }
    assert submitted_as == {
        str(uuid5(NAMESPACE, "request:CLM-103")): ["CLM-103"],
        # An id that is a UUID is the request's own: the object is named by it already.
        "6e0c1d2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f": [],
        str(uuid5(NAMESPACE, "live")): ["crm-48213"],
    }
    # Read back, the source ids are stated again.
    again = [p for p in read_ocel2(document) if isinstance(p, Envelope)]
    assert sorted(
        str(e.payload.submission_id)
        for e in again
        if isinstance(e.payload, intake.RequestSubmitted)
    ) == ["CLM-103", "None", "crm-48213"]


def test_ocel2_export_then_import_gives_the_same_figures(
    make_workload: Callable[..., list[Envelope]],
) -> None:
    facts = fold(make_workload())
    document = json.loads(json.dumps(write_ocel2(entries_of(facts))))
    kinds = {o["type"] for o in document["objects"]}
    assert kinds == {"request", "case"}
    requests = [o for o in document["objects"] if o["type"] == "request"]
    cases = [o for o in document["objects"] if o["type"] == "case"]
    assert len(requests) == len(facts.requests)
    assert len(cases) == len(facts.cases)
    # Every case points at its request; every event at one request or case at least.
    assert all(c["relationships"][0]["qualifier"] == "request" for c in cases)
    assert all(e["relationships"] for e in document["events"])
    assert [e["time"] for e in document["events"]] == sorted(e["time"] for e in document["events"])
    assert {t["name"] for t in document["eventTypes"]} <= set(Activity)

    imported = fold(envelopes(list(read_ocel2(document))))
    assert figures(imported) == figures(facts)


def ocel(events: list[dict], objects: list[dict] | None = None) -> dict:
    return {
        "objectTypes": [],
        "eventTypes": [],
        "objects": objects
        if objects is not None
        else [
            {
                "id": "R-1",
                "type": "request",
                "attributes": [
                    {"name": "process_type", "time": "1970-01-01T00:00:00Z", "value": "claims"}
                ],
            },
            {"id": "R-2", "type": "Request", "attributes": []},
            {"id": "C-1", "type": "case", "attributes": []},
            {"id": "item-7", "type": "item", "attributes": []},
        ],
        "events": events,
    }


def event(type_: str, *objects: str, **attributes: object) -> dict:
    return {
        "id": f"e-{type_}",
        "type": type_,
        "time": "2026-11-23T09:00:00Z",
        "attributes": [{"name": k, "value": v} for k, v in attributes.items()],
        "relationships": [{"objectId": o, "qualifier": "x"} for o in objects],
    }


def test_ocel2_events_take_their_request_case_and_process_type_from_their_objects() -> None:
    submitted, opened = envelopes(
        list(
            read_ocel2(
                ocel(
                    [
                        event("request_submitted", "R-1", "item-7"),
                        event("case_opened", "C-1", "R-2", process_type="claims-v2"),
                    ]
                )
            )
        )
    )
    assert isinstance(submitted.payload, intake.RequestSubmitted)
    assert submitted.payload.request_type == "claims"
    assert submitted.payload.request_id == uuid5(NAMESPACE, "request:R-1")
    assert isinstance(opened.payload, case.CaseOpened)
    assert opened.payload.case_id == uuid5(NAMESPACE, "case:C-1")
    assert opened.payload.request_id == uuid5(NAMESPACE, "request:R-2")
    assert opened.payload.request_type == "claims-v2"


def test_invalid_ocel2_events_are_reported_with_their_position_and_id() -> None:
    parsed = list(
        read_ocel2(
            ocel(
                [
                    event("place order", "R-1"),
                    event("request_submitted", "R-9"),
                    event("step_entered", "R-1", "R-2", step="review"),
                    event("request_submitted", "R-1", price=3),
                    event("step_entered", "R-1"),
                    event("step_entered", "R-1", step="review"),
                ]
            )
        )
    )
    assert [str(p) for p in parsed if isinstance(p, Rejected)] == [
        "events[0] (id e-place order): activity: 'place order' is not one of "
        + ", ".join(Activity),
        "events[1] (id e-request_submitted): relationship to 'R-9': no such object",
        "events[2] (id e-step_entered): relates to more than one request (R-1, R-2)",
        "events[3] (id e-request_submitted): attribute 'price' is not one of "
        "process_type, actor, step, step_kind, sla_due_at, definition_version, override_id, "
        "override_kind, rule, target, decision_id, decision, outcome, origin, rationale, "
        "relied_on, gap_acknowledged, submission_id, case_source_id",
        "events[4] (id e-step_entered): step: required for step_entered",
    ]
    assert len([p for p in parsed if isinstance(p, Envelope)]) == 1
    (not_a_log,) = read_ocel2({"objects": []})
    assert str(not_a_log) == "document: not an OCEL 2.0 JSON log: no `events` list"


def test_an_imported_override_without_a_reason_counts_as_an_override_and_an_audit_gap() -> None:
    text = (
        "timestamp,activity,request_id,process_type,actor,rule,rationale,relied_on\n"
        "2026-11-23T09:00:00Z,request_submitted,R-1,access,,,,\n"
        "2026-11-23T09:05:00Z,override_applied,R-1,,ops-lead,team == it,,\n"
        "2026-11-23T09:06:00Z,request_submitted,R-2,access,,,,\n"
        "2026-11-23T09:07:00Z,override_applied,R-2,,ops-lead,team == it,On watch list,call-1\n"
    )
    parsed = list(read_csv(text.splitlines(keepends=True)))
    assert not [p for p in parsed if isinstance(p, Rejected)]
    envelopes = [p for p in parsed if isinstance(p, Envelope)]
    overrides = [e.payload for e in envelopes if isinstance(e.payload, workflow.OverrideApplied)]
    assert [o.reason for o in overrides] == ["", "On watch list"]

    week = measure(fold(envelopes), "access", window_of(envelopes[0].occurred_at, Granularity.WEEK))

    assert (week.volume, week.overrides, week.overridden, week.exception_rate) == (2, 2, 2, 1.0)
    assert week.audit.share_of(AuditKind.OVERRIDE) == 0.5
    assert [(g.kind, g.missing) for g in week.audit.gaps] == [
        (AuditKind.OVERRIDE, (Missing.RATIONALE, Missing.RELIED_ON))
    ]


def test_an_entry_names_the_fields_its_event_needs() -> None:
    at = entry_of({"activity": "case_opened", "timestamp": "2026-11-23T09:00:00Z"}).at
    with pytest.raises(EntryError, match="case_id: required for case_opened"):
        envelope_of(LogEntry(Activity.CASE_OPENED, at))
    with pytest.raises(EntryError, match="request_id, process_type: required"):
        envelope_of(LogEntry(Activity.ESCALATED_TO_CASE, at))
    completed = envelope_of(LogEntry(Activity.INSTANCE_COMPLETED, at, request_id="R", case_id="C"))
    assert isinstance(completed.payload, workflow.InstanceCompleted)
    assert completed.payload.outcome == "resolved_by_case"


def test_an_empty_a_header_only_or_a_short_row_csv_says_where_and_why() -> None:
    assert [str(p) for p in read_csv([])] == [
        "line 1: the file is empty: a header row comes first (columns: "
        + ", ".join(CSV_COLUMNS)
        + ")"
    ]
    assert [str(p) for p in read_csv(["timestamp,activity,request_id\n", "\n"])] == [
        "line 3: no rows after the header"
    ]
    short = read_csv(
        [
            "timestamp,activity,request_id,process_type\n",
            "2026-11-23T09:00:00Z,request_submitted,R-1\n",
            "2026-11-23T09:00:00Z,request_submitted,R-2,\n",
        ]
    )
    first, second = short
    assert str(first) == "line 2: 3 values for 4 columns"
    # An empty last cell is a value: the row is judged on its fields (process_type required).
    assert str(second) == "line 3: process_type: required for request_submitted"


def test_a_file_stops_being_utf8_at_the_line_that_says_so() -> None:
    text = "timestamp,activity\nline two\nthird, café\n".encode("latin-1")

    for size in (1, 7, len(text)):  # however the file is read, the same line
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        problem = utf8_problem(chunks)
        assert problem is not None
        assert str(problem).startswith("line 3: not UTF-8 (byte 0xe9)")
    assert utf8_problem(["timestamp,activity\ncafé\n".encode()]) is None
    assert str(utf8_problem(["café".encode()[:-1]])) == (
        "line 1: not UTF-8 (the file ends inside a character)"
    )


def test_an_ocel2_file_is_read_as_a_stream_whatever_the_order_of_its_parts(
    make_workload: Callable[..., list[Envelope]], tmp_path: Path
) -> None:
    """A log of any size is read event by event (bounded memory): its objects first, then its
    events, even where the document lists its events before its objects."""
    document = write_ocel2(entries_of(fold(make_workload(days=2))))
    events_first = {"events": document["events"], **document}
    path = tmp_path / "log.json"
    path.write_text(json.dumps(events_first))

    def opened(_: str) -> BinaryIO:
        return path.open("rb")

    streamed = envelopes(list(read_ocel2_file(opened)))
    whole = envelopes(list(read_ocel2(document)))
    assert len(streamed) == len(document["events"])
    assert [(e.event_id, e.payload) for e in streamed] == [(e.event_id, e.payload) for e in whole]

    # Cut short, the events before the cut are read, then the document is refused where it ends.
    text = json.dumps(document)  # its objects first, as the export writes them
    path.write_text(text[: len(text) * 2 // 3])
    *read, last = read_ocel2_file(opened)
    assert read
    assert all(isinstance(p, Envelope) for p in read)
    assert isinstance(last, Rejected)
    assert last.where == "document"
    assert last.reason.startswith("not JSON")

    path.write_text(json.dumps({"objects": []}))
    assert [str(p) for p in read_ocel2_file(opened)] == [
        "document: not an OCEL 2.0 JSON log: no `events` list"
    ]


def test_the_export_names_each_case_by_the_id_its_source_knew_it_by() -> None:
    text = (
        "timestamp,activity,request_id,case_id,process_type\n"
        "2026-11-23T09:00:00Z,request_submitted,CLM-103,,claims\n"
        "2026-11-23T09:30:00Z,case_opened,CLM-103,TCK-7731,claims\n"
        "2026-11-23T10:00:00Z,case_opened,,9b2f7c1e-0d4a-4e8b-9c6f-1a2b3c4d5e6f,claims\n"
        "2026-11-23T11:00:00Z,case_resolved,,TCK-7731,claims\n"
    )
    imported = envelopes(list(read_csv(text.splitlines(keepends=True))))
    facts = fold(imported)
    ticket = uuid5(NAMESPACE, "case:TCK-7731")
    source = facts.cases[ticket].source_id
    assert source is not None
    assert source.value == "TCK-7731"

    document = write_ocel2(entries_of(facts))
    known_as = {
        o["id"]: [a["value"] for a in o["attributes"] if a["name"] == "case_source_id"]
        for o in document["objects"]
        if o["type"] == "case"
    }
    assert known_as == {
        str(ticket): ["TCK-7731"],
        # An id that is a UUID is the case's own: the object is named by it already.
        "9b2f7c1e-0d4a-4e8b-9c6f-1a2b3c4d5e6f": [],
    }
    # Read back, and exported as CSV columns would be, the source id is stated again.
    again = fold(envelopes(list(read_ocel2(document))))
    source = again.cases[ticket].source_id
    assert source is not None
    assert source.value == "TCK-7731"
