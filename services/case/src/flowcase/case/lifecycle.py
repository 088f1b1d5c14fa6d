"""The status machine of a case.

    open ──> investigating <──> pending
      │            │               │
      └────────────┴──── resolve ──┴──> resolved ──> closed
                                          │            │
      open <──────────── reopen ──────────┴────────────┘

A case reaches `resolved` only through `resolve` (which needs an outcome code and its
justification), never through a plain status change.
"""

from __future__ import annotations

from flowcase.case.errors import IllegalTransition
from flowcase.events.catalogue.case import CaseStatus

TRANSITIONS: dict[CaseStatus, tuple[CaseStatus, ...]] = {
    CaseStatus.OPEN: (CaseStatus.INVESTIGATING, CaseStatus.PENDING, CaseStatus.RESOLVED),
    CaseStatus.INVESTIGATING: (CaseStatus.PENDING, CaseStatus.RESOLVED),
    CaseStatus.PENDING: (CaseStatus.INVESTIGATING, CaseStatus.RESOLVED),
    CaseStatus.RESOLVED: (CaseStatus.CLOSED, CaseStatus.OPEN),
    CaseStatus.CLOSED: (CaseStatus.OPEN,),
}


def status_changes_from(current: CaseStatus) -> tuple[CaseStatus, ...]:
    """The statuses a plain status change may move a case to."""
    return tuple(target for target in TRANSITIONS[current] if target is not CaseStatus.RESOLVED)


def check_status_change(current: CaseStatus, target: CaseStatus) -> None:
    if target not in status_changes_from(current):
        raise IllegalTransition(current, target, status_changes_from(current))


def check_resolution(current: CaseStatus) -> None:
    if CaseStatus.RESOLVED not in TRANSITIONS[current]:
        raise IllegalTransition(current, CaseStatus.RESOLVED, status_changes_from(current))
