"""Why the case service refuses a command.

Two families, so an HTTP layer maps them without knowing each error: a `CaseConflict` is a
command that was well formed but collides with the case's current state (409); an
`InvalidCommand` is a command that could never be accepted as given (422). Besides them, a case
may be unknown (`CaseNotFound`, 404), its stored record damaged (`BrokenRecord`, 500), or its
chain's anchor out of reach for now (`AnchorsUnreadable`, 503).
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from flowcase.events.catalogue.case import CaseStatus


class CaseError(Exception):
    """A command the case refused; nothing was recorded."""


class CaseNotFound(CaseError):
    def __init__(self, case_id: UUID) -> None:
        super().__init__(f"no case {case_id}")
        self.case_id = case_id


class BrokenRecord(CaseError):
    """The stored events of the case no longer load: a row was deleted or damaged in the
    database. The audit chain (`verify_chain`) tells where."""

    def __init__(self, case_id: UUID, reason: str) -> None:
        super().__init__(f"the stored record of case {case_id} no longer loads: {reason}")
        self.case_id = case_id


class AnchorsUnreadable(CaseError):
    """The chain anchors on Kafka cannot be read now, so a case's chain cannot be verified
    against its anchor; waiting cures it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the chain anchors cannot be read now ({reason}); nothing was verified")


class CaseConflict(CaseError):
    """The command is valid, but not against the case as it is now."""


class StaleVersion(CaseConflict):
    def __init__(self, case_id: UUID, expected: int, actual: int) -> None:
        super().__init__(
            f"case {case_id} is at version {actual}, the command was based on version {expected}"
        )
        self.case_id = case_id
        self.expected = expected
        self.actual = actual


class IllegalTransition(CaseConflict):
    def __init__(
        self, from_status: CaseStatus, to_status: CaseStatus, allowed: Iterable[CaseStatus]
    ) -> None:
        self.from_status = from_status
        self.to_status = to_status
        self.allowed = tuple(allowed)
        listed = ", ".join(self.allowed) or "none"
        super().__init__(f"a case cannot go from {from_status} to {to_status} (allowed: {listed})")


class ClockConflict(CaseConflict):
    """The request's clock is not in the state the command needs (none, paused, running)."""


class CaseClosed(CaseConflict):
    def __init__(self, case_id: UUID) -> None:
        super().__init__(f"case {case_id} is closed; reopen it first")
        self.case_id = case_id


class TaskAlreadyCompleted(CaseConflict):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} is already completed")
        self.task_id = task_id


class InvalidCommand(CaseError):
    """The command cannot be accepted as given, whatever the case's state."""


class InvalidField(InvalidCommand):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownReference(InvalidCommand):
    """Ids the command refers to that the case does not hold."""

    def __init__(self, field: str, ids: Iterable[str]) -> None:
        self.field = field
        self.ids = tuple(ids)
        super().__init__(f"{field}: not in this case: {', '.join(self.ids)}")


class MissingJustification(InvalidCommand):
    """A decision, override or resolution without its rationale or the information relied on."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = tuple(missing)
        super().__init__(
            f"missing {' and '.join(self.missing)}; "
            "record it with gap_acknowledged=True to accept it as an audit-trail gap"
        )
