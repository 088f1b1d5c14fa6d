"""The tamper-evident audit chain of a case.

Every event of a case stores `chain_hash`, computed when the event is triggered:

    chain_hash(v) = SHA-256( chain_hash(v-1) || canonical_form(event v) )      hex, lowercase

where `chain_hash(0)` is `GENESIS` (64 zeros), `||` is byte concatenation and the previous hash
enters as its 64 ASCII hex characters. The canonical form of an event is this JSON object:

    {"actor": <who acted, or null>,
     "fields": <every other key of the event's stored state>,
     "originator_id": <the case id>,
     "timestamp": <when the event happened>,
     "type": <the event's topic, exactly as stored beside its state>,
     "version": <the event's position in the case, 1 for the opening>}

serialised deterministically: object keys sorted at every depth, no whitespace (separators "," and
":"), UTF-8 without escaping non-ASCII characters, NaN and infinities refused; a UUID is written
as its lowercase hyphenated string, a datetime in UTC as ISO 8601 with microseconds and "+00:00"
(e.g. "2026-11-24T09:15:00.000000+00:00"); lists keep their order. `chain_hash` itself is the
only stored key left out. Hashing the stored topic rather than a class name keeps old events
verifiable after the code moves: the topic stored with an event never changes.

Because each hash covers its version and its predecessor's hash, a modified event no longer
matches its hash, a deleted event leaves a gap in the versions, and two swapped events each sit
at a version their hash was not computed for.

The chain alone is keyless: whoever can write the database can rewrite a case's whole tail and
recompute every hash, or delete its latest events. So each case's head is also anchored outside
the database, on the compacted Kafka topic `flowcase.case.chain-heads`
(`flowcase.case.chain_anchors`). Given the case's anchor, `verify_chain` also requires the stored
chain to reach the anchored version and to carry the anchored hash there: a recomputed tail
holds together but not to the anchor, and a truncated one stops short of it. An anchor only
moves forward along the chain it anchored (`extend`), so a rewritten chain never gets anchored
in its place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple
from uuid import UUID

GENESIS = "0" * 64

# Stored-state keys the canonical form does not put under "fields": the hash itself, and the
# keys it names at the top level (a domain event's state holds its originator id and version).
_NOT_FIELDS = frozenset({"chain_hash", "actor", "timestamp", "originator_id", "originator_version"})


def _json_value(value: Any) -> str:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} has no place in an event")
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_form(
    *,
    topic: str,
    originator_id: UUID,
    version: int,
    timestamp: datetime,
    actor: str | None,
    fields: Mapping[str, Any],
) -> bytes:
    document = {
        "actor": actor,
        "fields": dict(fields),
        "originator_id": originator_id,
        "timestamp": timestamp,
        "type": topic,
        "version": version,
    }
    text = json.dumps(
        document,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_value,
    )
    return text.encode("utf-8")


def link(previous_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(previous_hash.encode("ascii") + canonical).hexdigest()


class ChainRecord(NamedTuple):
    """One stored event of a case, as verification reads it.

    `state` is the event's state decoded by the application's mapper (so timestamps are
    datetimes and ids UUIDs): either the stored state alone or `vars()` of the decoded domain
    event, which adds the originator id and version.
    """

    version: int
    topic: str
    state: Mapping[str, Any]


def expected_hash(previous_hash: str, case_id: UUID, record: ChainRecord) -> str | None:
    """The hash the record should carry after `previous_hash`; None if its state is malformed."""
    state = record.state
    try:
        canonical = canonical_form(
            topic=record.topic,
            originator_id=case_id,
            version=record.version,
            timestamp=state["timestamp"],
            actor=state.get("actor"),
            fields={key: value for key, value in state.items() if key not in _NOT_FIELDS},
        )
    except (KeyError, TypeError, ValueError):
        return None
    return link(previous_hash, canonical)


class BreakKind(StrEnum):
    MODIFIED = "modified"
    MISSING = "missing"
    REORDERED = "reordered"
    # Found only against an anchor: the chain holds together, but not to the anchored hash.
    REWRITTEN = "rewritten"


@dataclass(frozen=True)
class ChainBreak:
    version: int
    kind: BreakKind
    detail: str


@dataclass(frozen=True)
class ChainAnchor:
    """A case's chain head as anchored outside the case database: its hash at that version."""

    version: int
    chain_hash: str


@dataclass(frozen=True)
class ChainReport:
    """What verification found: how many events held, the last good hash, the first break, and
    the anchored version checked (None without an anchor)."""

    case_id: UUID
    verified: int
    head: str
    broken: ChainBreak | None = None
    anchored: int | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None


def verify_chain(
    case_id: UUID,
    records: Iterable[ChainRecord | tuple[int, str, Mapping[str, Any]]],
    anchor: ChainAnchor | None = None,
) -> ChainReport:
    """Check the stored events of one case, given in version order; report the first break.

    With the case's anchor, the chain must also reach the anchored version and carry the
    anchored hash there.
    """
    chain = [ChainRecord(*record) for record in records]
    report = _walk(case_id, chain)
    if anchor is None:
        return report
    report = replace(report, anchored=anchor.version)
    if not report.intact:
        return report
    if report.verified < anchor.version:
        ends = f"ends at version {report.verified}" if report.verified else "is empty"
        detail = (
            f"version {anchor.version} was anchored, but the stored chain {ends}: "
            "the later events were deleted"
        )
        return replace(report, broken=ChainBreak(report.verified + 1, BreakKind.MISSING, detail))
    if chain[anchor.version - 1].state["chain_hash"] != anchor.chain_hash:
        # Every hash links, so the rewrite may have begun anywhere up to the anchored version:
        # none of those events is vouched for.
        detail = (
            f"the chain holds, but not to the hash anchored at version {anchor.version}: "
            "events up to it were rewritten and their hashes recomputed"
        )
        broken = ChainBreak(anchor.version, BreakKind.REWRITTEN, detail)
        return replace(report, verified=0, head=GENESIS, broken=broken)
    return report


class NotAnExtension(Exception):
    """Stored events that do not continue a case's chain from its anchored head."""


def extend(
    case_id: UUID, anchor: ChainAnchor | None, records: Iterable[ChainRecord]
) -> ChainAnchor:
    """The head after a case's newly stored events (in version order), which must continue its
    chain from `anchor` (from the genesis when it has none).

    Events up to the anchored version are a replay (the log read again from an earlier
    position): only the one at that version is checked, and it must still carry the anchored
    hash. Raises `NotAnExtension` for anything else, so that an anchor never moves to a chain
    rewritten in the database.
    """
    head = anchor or ChainAnchor(0, GENESIS)
    for record in records:
        stored = record.state.get("chain_hash")
        if record.version <= head.version:
            if record.version == head.version and stored != head.chain_hash:
                raise NotAnExtension(f"version {head.version} no longer carries its anchored hash")
            continue
        if record.version != head.version + 1:
            raise NotAnExtension(f"version {head.version + 1} is missing")
        recomputed = expected_hash(head.chain_hash, case_id, record)
        if recomputed is None or stored != recomputed:
            raise NotAnExtension(
                f"version {record.version} does not continue the chain from version {head.version}"
            )
        head = ChainAnchor(record.version, recomputed)
    return head


def _walk(case_id: UUID, chain: list[ChainRecord]) -> ChainReport:
    previous = GENESIS
    for position, record in enumerate(chain, start=1):
        if record.version != position:
            return ChainReport(case_id, position - 1, previous, _version_break(position, record))
        recomputed = expected_hash(previous, case_id, record)
        if recomputed is None or record.state.get("chain_hash") != recomputed:
            found_break = _hash_break(previous, case_id, position, chain)
            return ChainReport(case_id, position - 1, previous, found_break)
        previous = recomputed
    return ChainReport(case_id, len(chain), previous)


def _version_break(position: int, record: ChainRecord) -> ChainBreak:
    if record.version > position:
        return ChainBreak(
            position,
            BreakKind.MISSING,
            f"version {position} is missing: the next stored event is version {record.version}",
        )
    return ChainBreak(
        position,
        BreakKind.REORDERED,
        f"version {record.version} comes after version {position - 1}",
    )


def _hash_break(
    previous: str, case_id: UUID, position: int, chain: list[ChainRecord]
) -> ChainBreak:
    # The event that belongs at this position is the one whose hash verifies there, wherever it
    # is stored now; finding it elsewhere tells a reordering from a modification.
    for stored_at, candidate in enumerate(chain, start=1):
        at_position = candidate._replace(version=position)
        if stored_at != position and candidate.state.get("chain_hash") == expected_hash(
            previous, case_id, at_position
        ):
            return ChainBreak(
                position,
                BreakKind.REORDERED,
                f"the event recorded as version {position} is stored as version "
                f"{candidate.version}",
            )
    return ChainBreak(
        position,
        BreakKind.MODIFIED,
        f"the event stored as version {position} does not match its hash",
    )
