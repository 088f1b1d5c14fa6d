"""What a case holds: one immutable entry per note, communication, evidence, task, decision...

Entries keep plain values (enum members as their string values) so that a snapshot of the case
decodes to entries equal to the ones a replay builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Note:
    note_id: str
    text: str
    by: str
    at: datetime


@dataclass(frozen=True)
class Communication:
    communication_id: str
    direction: str
    channel: str
    parties: list[str]
    summary: str
    by: str
    at: datetime


@dataclass(frozen=True)
class Evidence:
    evidence_id: str
    reference: str
    sha256: str
    by: str
    at: datetime


@dataclass(frozen=True)
class Task:
    task_id: str
    title: str
    due_at: datetime | None
    added_by: str
    added_at: datetime
    completed_by: str | None = None
    completed_at: datetime | None = None
    result: str | None = None

    @property
    def completed(self) -> bool:
        return self.completed_at is not None


@dataclass(frozen=True)
class Milestone:
    milestone: str
    by: str
    at: datetime


@dataclass(frozen=True)
class Decision:
    decision_id: str
    decision: str
    rationale: str | None
    relied_on: list[str]
    gap_acknowledged: bool
    by: str
    at: datetime


@dataclass(frozen=True)
class Override:
    override_id: str
    target: str
    rationale: str | None
    relied_on: list[str]
    gap_acknowledged: bool
    by: str
    at: datetime


@dataclass(frozen=True)
class Resolution:
    outcome_code: str
    rationale: str | None
    relied_on: list[str]
    gap_acknowledged: bool
    by: str
    at: datetime


ENTRY_TYPES = (Note, Communication, Evidence, Task, Milestone, Decision, Override, Resolution)
