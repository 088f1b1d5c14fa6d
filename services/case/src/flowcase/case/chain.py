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
at a version their hash was not computed for. The chain is keyless: whoever can rewrite the
whole tail of a case can recompute it; anchoring head hashes outside the database closes that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


def _recomputed_hash(previous_hash: str, case_id: UUID, record: ChainRecord) -> str | None:
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


@dataclass(frozen=True)
class ChainBreak:
    version: int
    kind: BreakKind
    detail: str


@dataclass(frozen=True)
class ChainReport:
    """What verification found: how many events held, the last good hash, the first break."""

    case_id: UUID
    verified: int
    head: str
    broken: ChainBreak | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None


def verify_chain(
    case_id: UUID, records: Iterable[ChainRecord | tuple[int, str, Mapping[str, Any]]]
) -> ChainReport:
    """Check the stored events of one case, given in version order; report the first break."""
    chain = [ChainRecord(*record) for record in records]
    previous = GENESIS
    for position, record in enumerate(chain, start=1):
        if record.version != position:
            return ChainReport(case_id, position - 1, previous, _version_break(position, record))
        recomputed = _recomputed_hash(previous, case_id, record)
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
        if stored_at != position and candidate.state.get("chain_hash") == _recomputed_hash(
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
