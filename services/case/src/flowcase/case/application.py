"""The case application: load a case, run one command on it, save its new events.

Persistence is the `eventsourcing` library's, configured by environment (`PERSISTENCE_MODULE`,
`POSTGRES_*`, ... from `os.environ` or the `env` constructor argument, see
`flowcase.eventstore.postgres_env`); without any, cases live in memory. New events reach other
services through the application's notification log and the relay. An escalation consumed from
Kafka is saved with its tracking record (`TrackedApplication`), in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import OriginatorVersionError
from eventsourcing.persistence import (
    JSONTranscoder,
    MapperDeserialisationError,
    RecordConflictError,
    StoredEvent,
    Tracking,
    Transcoding,
)
from eventsourcing.utils import TopicError

from flowcase.case.aggregate import Case, case_id_for_request
from flowcase.case.chain import ChainRecord, ChainReport, verify_chain
from flowcase.case.commands import CaseCommand
from flowcase.case.entries import ENTRY_TYPES
from flowcase.case.errors import BrokenRecord, CaseNotFound, StaleVersion
from flowcase.events.catalogue.common import Priority
from flowcase.events.catalogue.workflow import EscalatedToCase
from flowcase.eventstore import TrackedApplication

# A case loads from its latest snapshot plus at most this many events.
SNAPSHOT_INTERVAL = 50

# What loading raises when stored rows were deleted (a version gap) or no longer decode.
_UNLOADABLE = (OriginatorVersionError, MapperDeserialisationError, TopicError)


@dataclass(frozen=True)
class Recorded:
    """What a command left: the case's new version, and the id of the entry it added if any."""

    case_id: UUID
    version: int
    entry_id: str | None = None


class _EntryAsDict(Transcoding):
    """Stores a case entry (in snapshots) as its fields, and rebuilds it from them."""

    def __init__(self, entry_type: type[Any]) -> None:
        self.type = entry_type
        self.name = f"case_{entry_type.__name__.lower()}"

    def encode(self, obj: Any) -> dict[str, Any]:
        return {field.name: getattr(obj, field.name) for field in fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


class CaseApplication(TrackedApplication):
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Case: SNAPSHOT_INTERVAL}

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for entry_type in ENTRY_TYPES:
            transcoder.register(_EntryAsDict(entry_type))

    def open_from_escalation(
        self, escalation: EscalatedToCase, *, tracking: Tracking | None = None
    ) -> UUID:
        """Open the case of an escalated request; a redelivered escalation changes nothing.

        With `tracking` (the consumed message's position), the opening and the tracking record
        commit together, so a redelivery of the same message is known without a write.
        """
        if tracking is not None and self.consumed(tracking):
            return case_id_for_request(escalation.request_id)
        case = Case.open_from_escalation(escalation)
        # The case id comes from the request id, so an earlier delivery's opening (the same
        # escalation re-published at another offset) holds version 1 of the same case and the
        # store refuses this one.
        try:
            if tracking is None:
                self.save(case)
            else:
                self.save_tracked(case, tracking=tracking)
        except RecordConflictError:
            if tracking is not None:
                # Still record the message as consumed; a conflict here means another
                # consumer recorded it first.
                with suppress(RecordConflictError):
                    self.save_tracked(tracking=tracking)
        return case.id

    def open_case(
        self,
        title: str,
        *,
        actor: str,
        priority: Priority | str = Priority.NORMAL,
        request_id: UUID | None = None,
        request_type: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> UUID:
        case = Case.open_manually(
            title,
            actor=actor,
            priority=priority,
            request_id=request_id,
            request_type=request_type,
            context=context,
        )
        self.save(case)
        return case.id

    def get_case(self, case_id: UUID) -> Case:
        try:
            case: Case = self.repository.get(case_id)
        except AggregateNotFoundError:
            raise CaseNotFound(case_id) from None
        except _UNLOADABLE as exc:
            raise BrokenRecord(case_id, repr(exc)) from exc
        return case

    def execute(self, case_id: UUID, command: CaseCommand, *, actor: str) -> Recorded:
        """Run `command` as `actor` on the case, if the case is still at the version the command
        was based on (else `StaleVersion`, and nothing is recorded)."""
        if command.expected_version is None:
            raise ValueError(f"{command.command_name()} names no expected_version")
        case = self.get_case(case_id)
        if case.version != command.expected_version:
            raise StaleVersion(case_id, command.expected_version, case.version)
        entry_id = command.run(case, actor=actor)
        try:
            self.save(case)
        except RecordConflictError:
            # Another writer saved between our load and our save: its event holds the version.
            raise StaleVersion(
                case_id, command.expected_version, self.get_case(case_id).version
            ) from None
        return Recorded(case_id, case.version, entry_id)

    def record_broken_promise(self, case_id: UUID, now: datetime) -> bool:
        """State the case's broken promise if it is due and not stated yet; whether it was.
        Another writer saving first leaves it for the next look (RecordConflictError)."""
        case = self.get_case(case_id)
        if not case.record_broken_promise(now):
            return False
        self.save(case)
        return True

    def history(self, case_id: UUID) -> list[Case.Event]:
        """Every event of the case, in version order."""
        try:
            # The store types its events by protocol only; under a case id it holds the
            # events of that one Case aggregate, every one a Case.Event.
            events = cast(list[Case.Event], list(self.events.get(case_id)))
        except _UNLOADABLE as exc:
            raise BrokenRecord(case_id, repr(exc)) from exc
        if not events:
            raise CaseNotFound(case_id)
        return events

    def case_ids(self, batch_size: int = 1000) -> Iterator[UUID]:
        """Every case in the store, in the order they were opened, read from the notification
        log (so a case whose opening was deleted is still found by its later events)."""
        seen: set[UUID] = set()
        position = 0
        while notifications := self.recorder.select_notifications(
            position, batch_size, inclusive_of_start=False
        ):
            for notification in notifications:
                case_id = notification.originator_id
                # Case ids are UUIDs (the recorder's column is a uuid), never the string ids
                # the library also allows.
                assert isinstance(case_id, UUID)
                if case_id not in seen:
                    seen.add(case_id)
                    yield case_id
            position = notifications[-1].id

    # The audit chain, read from the stored events (snapshots play no part in it).

    def chain_records(self, case_id: UUID) -> list[ChainRecord]:
        records = [self.chain_record(stored) for stored in self.recorder.select_events(case_id)]
        if not records:
            raise CaseNotFound(case_id)
        return records

    def verify_chain(self, case_id: UUID) -> ChainReport:
        return verify_chain(case_id, self.chain_records(case_id))

    def chain_record(self, stored: StoredEvent) -> ChainRecord:
        try:
            state = vars(self.mapper.to_domain_event(stored))
        except (MapperDeserialisationError, TopicError):
            # A row that no longer decodes cannot match its hash: verification reports it.
            state = {}
        return ChainRecord(stored.originator_version, stored.topic, state)
