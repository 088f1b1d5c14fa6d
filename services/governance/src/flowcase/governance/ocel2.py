"""OCEL 2.0 JSON, the object-centric event log process-mining tools (PM4Py) read and write.

The mapping, both ways: object types `request` and `case` (a request's or case's id is its
object id); each event type is an activity of the vocabulary (`activity_log.Activity`); an event
relates to its request (qualifier `request`) and its case (qualifier `case`); every other field
of an entry is an event attribute of the same name (`relied_on` ids joined by `;`). A case
object relates to its request (qualifier `request`). Both object types carry the attribute
`process_type`, which an imported event without its own `process_type` takes from its request,
else from its case. A request object also carries `submission_id`, the id the system it came
from knew it by (the upstream submission id, or the imported log's own request id), and a case
object `case_source_id` (the imported log's own case id), so an export joins back to that
system.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from enum import Enum
from typing import IO, Any

import ijson

from flowcase.governance.activity_log import (
    OPTIONAL_FIELDS,
    RELIED_ON_SEPARATOR,
    Activity,
    EntryError,
    LogEntry,
    entry_of,
    envelope_of,
)
from flowcase.governance.log_readers import Parsed, Rejected

REQUEST = "request"
CASE = "case"
# Object attributes without a time of their own are stated at the epoch, as OCEL 2.0 does.
EPOCH = "1970-01-01T00:00:00Z"

_LINKS = ("request_id", "case_id")
# The entry's fields an event states as attributes; its request and case are relationships.
_ATTRIBUTES = tuple(name for name in OPTIONAL_FIELDS if name not in _LINKS)
# OCEL attribute types of the event attributes (every other one is a string).
_TYPES = {
    "sla_due_at": "time",
    "definition_version": "integer",
    "gap_acknowledged": "boolean",
}


def _time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _value(value: Any) -> Any:
    match value:
        case datetime():
            return _time(value)
        case Enum():
            return value.value
        case tuple():
            return RELIED_ON_SEPARATOR.join(value)
    return value


def _attributes(entry: LogEntry) -> list[dict[str, Any]]:
    attributes = []
    for name in _ATTRIBUTES:
        value = getattr(entry, name)
        if value in (None, (), False):
            continue
        attributes.append({"name": name, "value": _value(value)})
    return attributes


def write_ocel2(entries: Iterable[LogEntry]) -> dict[str, Any]:
    """The OCEL 2.0 document of the entries, events in time order (ties by id)."""
    events = []
    requests: dict[str, str | None] = {}
    submission_ids: dict[str, str] = {}
    case_source_ids: dict[str, str] = {}
    cases: dict[str, tuple[str | None, str | None]] = {}
    used: dict[str, set[str]] = {}
    for entry in entries:
        relationships = []
        if entry.request_id:
            relationships.append({"objectId": entry.request_id, "qualifier": REQUEST})
            if requests.get(entry.request_id) is None:
                requests[entry.request_id] = entry.process_type
            if entry.submission_id:
                submission_ids.setdefault(entry.request_id, entry.submission_id)
        if entry.case_id:
            relationships.append({"objectId": entry.case_id, "qualifier": CASE})
            known_request, known_type = cases.get(entry.case_id, (None, None))
            if entry.activity is Activity.CASE_OPENED:
                known_type = entry.process_type
            cases[entry.case_id] = (known_request or entry.request_id, known_type)
            if entry.case_source_id:
                case_source_ids.setdefault(entry.case_id, entry.case_source_id)
        attributes = _attributes(entry)
        used.setdefault(entry.activity.value, set()).update(a["name"] for a in attributes)
        event_id = envelope_of(entry).event_id
        events.append(
            {
                "id": str(event_id),
                "type": entry.activity.value,
                "time": _time(entry.at),
                "attributes": attributes,
                "relationships": relationships,
            }
        )
    events.sort(key=lambda e: (e["time"], e["id"]))

    def typed(name: str | None) -> list[dict[str, Any]]:
        return [] if name is None else [{"name": "process_type", "time": EPOCH, "value": name}]

    def known_as(name: str, source: str | None) -> list[dict[str, Any]]:
        return [] if source is None else [{"name": name, "time": EPOCH, "value": source}]

    objects = [
        {
            "id": rid,
            "type": REQUEST,
            "attributes": typed(process_type) + known_as("submission_id", submission_ids.get(rid)),
            "relationships": [],
        }
        for rid, process_type in sorted(requests.items())
    ]
    for cid, (rid, process_type) in sorted(cases.items()):
        links = [{"objectId": rid, "qualifier": REQUEST}] if rid in requests else []
        attributes = typed(process_type) + known_as("case_source_id", case_source_ids.get(cid))
        objects.append({"id": cid, "type": CASE, "attributes": attributes, "relationships": links})
    return {
        "objectTypes": [
            {
                "name": REQUEST,
                "attributes": [
                    {"name": "process_type", "type": "string"},
                    {"name": "submission_id", "type": "string"},
                ],
            },
            {
                "name": CASE,
                "attributes": [
                    {"name": "process_type", "type": "string"},
                    {"name": "case_source_id", "type": "string"},
                ],
            },
        ],
        "eventTypes": [
            {
                "name": activity,
                "attributes": [
                    {"name": name, "type": _TYPES.get(name, "string")}
                    for name in _ATTRIBUTES
                    if name in used[activity]
                ],
            }
            for activity in sorted(used)
        ],
        "objects": objects,
        "events": events,
    }


def _object_types(objects: Iterable[Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Object id → type (lower case), and object id → its `process_type` (the first stated)."""
    kinds: dict[str, str] = {}
    process_types: dict[str, str] = {}
    for obj in objects:
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            continue
        kinds[obj["id"]] = str(obj.get("type", "")).lower()
        stated = [
            a
            for a in obj.get("attributes") or []
            if isinstance(a, dict) and a.get("name") == "process_type" and a.get("value")
        ]
        if stated:
            first = min(stated, key=lambda a: str(a.get("time") or EPOCH))
            process_types[obj["id"]] = str(first["value"])
    return kinds, process_types


def read_ocel2(document: Any) -> Iterator[Parsed]:
    """The envelopes of an OCEL 2.0 document's events, in document order. An event whose type is
    not an activity of the vocabulary, or that relates to no request or case it needs, is
    rejected with its position and id; objects of other types are not Flowcase's and are passed
    over."""
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        yield Rejected("document", "not an OCEL 2.0 JSON log: no `events` list")
        return
    yield from _read_events(document["events"], *_object_types(document.get("objects") or []))


def read_ocel2_file(opened: Callable[[str], AbstractContextManager[IO[bytes]]]) -> Iterator[Parsed]:
    """`read_ocel2` of the document a file holds, read twice as a stream (its objects, then its
    events, one at a time), so a log of any size is imported in bounded memory. `opened(pass)`
    opens the file for the named pass ("objects", "events"). A file that is no JSON is rejected
    where the parser stops; one without events is read whole, to say what it holds."""
    with opened("objects") as f:
        kinds, process_types = _object_types(_until_broken(ijson.items(f, "objects.item")))
    try:
        events = 0
        with opened("events") as f:
            for item in _read_events(
                ijson.items(f, "events.item", use_float=True), kinds, process_types
            ):
                events += 1
                yield item
    except ijson.JSONError as exc:
        yield Rejected("document", f"not JSON: {_parser_message(exc)}")
        return
    if events == 0:
        with opened("document") as f:
            try:
                document = json.load(f)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                yield Rejected("document", f"not JSON: {exc}")
                return
        yield from read_ocel2(document)


def _parser_message(exc: ijson.JSONError) -> str:
    """The parser's words on one line (its C backend gives bytes, with a caret under the fault)."""
    message = exc.args[0] if exc.args else str(exc)
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return " ".join(str(message).split())


def _until_broken(items: Iterator[Any]) -> Iterator[Any]:
    """The items before any point where the document stops being JSON: the events before a cut
    are still read, and the pass over them reports where the document ends."""
    with contextlib.suppress(ijson.JSONError):
        yield from items


def _read_events(
    events: Iterable[Any], kinds: dict[str, str], process_types: dict[str, str]
) -> Iterator[Parsed]:
    for index, event in enumerate(events):
        identity = event.get("id") if isinstance(event, dict) else None
        where = f"events[{index}]" + (f" (id {identity})" if identity is not None else "")
        try:
            yield envelope_of(entry_of(_values(event, kinds, process_types)))
        except EntryError as exc:
            yield Rejected(where, str(exc))


def _values(event: Any, kinds: dict[str, str], process_types: dict[str, str]) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise EntryError("an event is a JSON object")
    values: dict[str, Any] = {"activity": event.get("type"), "timestamp": event.get("time")}
    for attribute in event.get("attributes") or []:
        name = attribute.get("name") if isinstance(attribute, dict) else None
        if not isinstance(name, str) or name not in _ATTRIBUTES:
            raise EntryError(f"attribute {name!r} is not one of {', '.join(_ATTRIBUTES)}")
        values[name] = attribute.get("value")
    for relationship in event.get("relationships") or []:
        object_id = relationship.get("objectId") if isinstance(relationship, dict) else None
        kind = kinds.get(object_id) if isinstance(object_id, str) else None
        if kind is None:
            raise EntryError(f"relationship to {object_id!r}: no such object")
        link = {REQUEST: "request_id", CASE: "case_id"}.get(kind)
        if link is None:
            continue
        if values.get(link) not in (None, object_id):
            raise EntryError(f"relates to more than one {kind} ({values[link]}, {object_id})")
        values[link] = object_id
    if not values.get("process_type"):
        for link in _LINKS:
            if values.get(link) in process_types:
                values["process_type"] = process_types[values[link]]
                break
    return values
