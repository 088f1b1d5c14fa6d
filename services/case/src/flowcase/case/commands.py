"""What a case worker does to a case: one model per command (pure).

A command is data. The case worker API takes it as the request body (the route of each is one
row of a table, `http_api.COMMAND_ROUTES`), the application runs it on the case it loads
(`CaseApplication.execute`), and the command names the aggregate method that decides it, which
checks the case's rules and records the event. Every command is based on the version of the case
its caller read.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flowcase.case.aggregate import Case
from flowcase.events.catalogue.base import BoundedDatetime
from flowcase.events.catalogue.case import CaseStatus, Direction

_SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class CaseCommand(BaseModel):
    """What every command carries: the version of the case the caller read (who acts is the
    token's subject)."""

    expected_version: int | None = Field(
        default=None,
        ge=1,
        description="The case version the caller read (`version` of GET /v1/cases/{id}). "
        "Required unless given as the `If-Match` header (the ETag of that response); "
        "when both are given they must agree.",
    )

    @classmethod
    def command_name(cls) -> str:
        """`add_note` for `AddNote`: the name of its span, its route's operation and its method."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    @abstractmethod
    def run(self, case: Case, *, actor: str) -> str | None:
        """Decide the command on `case` (which records its event); the id of the entry it added
        (a note, a task, a decision…), if any."""


class Assign(CaseCommand):
    model_config = _examples({"expected_version": 1, "team": "it-security", "assignee": "agent-42"})

    team: str = Field(min_length=1)
    assignee: str | None = None

    def run(self, case: Case, *, actor: str) -> str | None:
        case.assign(self.team, self.assignee, actor=actor)
        return None


class Claim(CaseCommand):
    model_config = _examples({"expected_version": 2})

    def run(self, case: Case, *, actor: str) -> str | None:
        case.claim(actor=actor)
        return None


class AddNote(CaseCommand):
    model_config = _examples(
        {
            "expected_version": 3,
            "text": "Lockout followed 5 failed MFA prompts",
        }
    )

    text: str = Field(min_length=1)

    def run(self, case: Case, *, actor: str) -> str | None:
        return case.add_note(self.text, actor=actor)


class LogCommunication(CaseCommand):
    model_config = _examples(
        {
            "expected_version": 4,
            "direction": "outbound",
            "channel": "email",
            "parties": ["jdoe@example.com"],
            "summary": "Asked when the lockout started",
        }
    )

    direction: Direction
    channel: str = Field(min_length=1)
    parties: list[str] = Field(default_factory=list)
    summary: str = Field(min_length=1)

    def run(self, case: Case, *, actor: str) -> str | None:
        return case.log_communication(
            self.direction, self.channel, self.parties, self.summary, actor=actor
        )


class AttachEvidence(CaseCommand):
    model_config = _examples(
        {
            "expected_version": 5,
            "reference": "s3://evidence/idp-log-2291.json",
            "sha256": _SHA,
        }
    )

    reference: str = Field(min_length=1)
    sha256: str = Field(description="SHA-256 of the evidence's content, 64 hex digits.")

    def run(self, case: Case, *, actor: str) -> str | None:
        return case.attach_evidence(self.reference, self.sha256, actor=actor)


class AddTask(CaseCommand):
    model_config = _examples(
        {
            "expected_version": 6,
            "title": "Pull IdP logs",
            "due_at": "2026-11-25T17:00:00Z",
        }
    )

    title: str = Field(min_length=1)
    due_at: BoundedDatetime | None = None

    def run(self, case: Case, *, actor: str) -> str | None:
        return case.add_task(self.title, self.due_at, actor=actor)


class CompleteTask(CaseCommand):
    model_config = _examples({"expected_version": 7, "result": "Logs attached as e-1"})

    task_id: str = Field(description="The task (t-N); over HTTP, from the path.")
    result: str | None = None

    def run(self, case: Case, *, actor: str) -> str | None:
        case.complete_task(self.task_id, self.result, actor=actor)
        return None


class SetMilestone(CaseCommand):
    model_config = _examples({"expected_version": 8, "milestone": "root-cause-found"})

    milestone: str = Field(min_length=1)

    def run(self, case: Case, *, actor: str) -> str | None:
        case.set_milestone(self.milestone, actor=actor)
        return None


class PauseClock(CaseCommand):
    """Stop the escalated request's clock while the case waits on the requester."""

    model_config = _examples(
        {"expected_version": 5, "reason": "Waiting for the employee's written statement"}
    )

    reason: str = Field(min_length=1, max_length=2000)

    def run(self, case: Case, *, actor: str) -> str | None:
        case.pause_clock(self.reason, actor=actor)
        return None


class ResumeClock(CaseCommand):
    """Start the clock again: the promised time moves on by as long as it stood still."""

    model_config = _examples({"expected_version": 6})

    def run(self, case: Case, *, actor: str) -> str | None:
        case.resume_clock(actor=actor)
        return None


class ChangeStatus(CaseCommand):
    model_config = _examples({"expected_version": 2, "to_status": "investigating"})

    to_status: CaseStatus = Field(
        description="Where the case goes; `resolved` only through the resolution endpoint."
    )

    def run(self, case: Case, *, actor: str) -> str | None:
        case.change_status(self.to_status, actor=actor)
        return None


class Justified(CaseCommand):
    rationale: str | None = Field(default=None, description="Why, in words.")
    relied_on: list[str] = Field(
        default_factory=list,
        description="Ids of the notes (n-…), communications (m-…), evidence (e-…) or decisions "
        "(d-…) of this case the judgment relied on.",
    )
    gap_acknowledged: bool = Field(
        default=False,
        description="Set true to record it without a rationale or without relied_on; it is "
        "then an audit-trail gap that governance counts. Without it, such a record is 422.",
    )

    def _judged(self, decide: Callable[..., str | None], subject: str, *, actor: str) -> str | None:
        """`decide` (the aggregate's method) on `subject` with this judgment's justification."""
        return decide(
            subject,
            self.rationale,
            self.relied_on,
            gap_acknowledged=self.gap_acknowledged,
            actor=actor,
        )


class RecordDecision(Justified):
    model_config = _examples(
        {
            "expected_version": 9,
            "decision": "Restore access after MFA re-enrolment",
            "rationale": "Logs show a faulty token, not an attack",
            "relied_on": ["n-1", "e-1"],
        }
    )

    decision: str = Field(min_length=1)

    def run(self, case: Case, *, actor: str) -> str | None:
        return self._judged(case.record_decision, self.decision, actor=actor)


class ApplyOverride(Justified):
    model_config = _examples(
        {
            "expected_version": 10,
            "target": "sla",
            "rationale": "Requester is travelling; agreed a later date",
            "relied_on": ["m-1"],
        },
        {"expected_version": 10, "target": "sla", "gap_acknowledged": True},
    )

    target: str = Field(min_length=1, description="What the override sets aside.")

    def run(self, case: Case, *, actor: str) -> str | None:
        return self._judged(case.apply_override, self.target, actor=actor)


class Resolve(Justified):
    model_config = _examples(
        {
            "expected_version": 11,
            "outcome_code": "access_restored",
            "rationale": "Token replaced; requester confirmed access",
            "relied_on": ["d-1", "m-1"],
        }
    )

    outcome_code: str = Field(min_length=1)

    def run(self, case: Case, *, actor: str) -> str | None:
        return self._judged(case.resolve, self.outcome_code, actor=actor)
