"""What-if: a proposed definition against real history, with the pure engine, before deploying it.

Each past request is decided again, from `Submit`, by `engine.decide` under the proposed
definition: nothing is stored, sent or published. What the engine cannot know is taken from what
happened, and only where the proposed definition meets the same point:

- an approval is decided as it was, by the same person, when the request waited at a step of
  that name for the same role; an approval it never faced (another step, another role) stays
  **pending**, by role;
- an action succeeds, unless it failed at a step of that name (then it fails again: a connector
  failure is not predictable);
- a timer fires (an approval's timeout, an SLA) only where it fired at that step; otherwise no
  deadline passes: a what-if predicts routes, not waiting times;
- overrides are human acts, not replayed: each is counted again wherever the request still
  reaches the step it was applied at (the same people would likely do the same).

What happened is read from the request's own events (`PastRequest.of`), so a what-if of the
deployed definition predicts exactly what happened, as far as the list above reaches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from flowcase.events import Envelope, EventPayload
from flowcase.events.approach import Approach, approach_for
from flowcase.events.catalogue import Outcome, Priority
from flowcase.events.catalogue.workflow import (
    ActionFailed,
    ApprovalDecided,
    ApprovalRequested,
    EscalatedToCase,
    EscalationReason,
    InstanceCompleted,
    InstanceStarted,
    OverrideApplied,
    SlaBreached,
    StepEntered,
)
from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.effects import RunAction
from flowcase.workflow.engine import Decision, decide
from flowcase.workflow.state import InstanceState, PendingApproval, Status, Turn
from flowcase.workflow.triggers import (
    DecideApproval,
    FireTimer,
    ReportActionFailed,
    ReportActionSucceeded,
    Submit,
    Trigger,
)


class End(StrEnum):
    """Where a request's run ends."""

    COMPLETED = "completed"
    REFUSED = "refused at validation"
    ESCALATED = "escalated to a case"
    PENDING = "pending"  # waits for something history cannot tell (an approval it never faced)


@dataclass(frozen=True)
class Run:
    """What one definition does with one request: the steps it enters, in order, and its end."""

    steps: tuple[str, ...]
    end: End
    approvals: tuple[str, ...] = ()  # the roles asked, in order
    escalation: EscalationReason | None = None
    waiting_for: str | None = None  # a pending run: the role whose approval it waits for

    @property
    def outcome(self) -> tuple[End, EscalationReason | None, tuple[str, ...], str | None]:
        """What a request's route comes to: its end, and the approvals it needs on the way. A
        step it only passes through (a check that lets it go on) does not change it."""
        return (self.end, self.escalation, self.approvals, self.waiting_for)


# An event as history states it: the event, when it happened, and who acted (for a person's act).
Stated = tuple[EventPayload, datetime, str | None]


def stated_by_envelopes(envelopes: Iterable[Envelope]) -> Iterator[Stated]:
    for envelope in envelopes:
        yield envelope.payload, envelope.occurred_at, envelope.actor


def stated_by_turns(turns: Iterable[Turn]) -> Iterator[Stated]:
    """The events of an instance's stored turns (`WorkflowApplication.turns`)."""
    for turn in turns:
        for event in turn.events:
            yield event, turn.at, turn.actor_of(event)


@dataclass
class PastRequest:
    """One request as it happened: how it was submitted, and its run under the deployed version."""

    request_id: UUID
    request_type: str
    requester: str = "unknown"
    priority: Priority = Priority.NORMAL
    payload: Mapping[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    steps: list[str] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)
    asked: dict[str, str] = field(default_factory=dict)  # approval step → the role asked
    decided: dict[str, tuple[ApprovalDecided, str | None, datetime]] = field(default_factory=dict)
    failed: dict[str, ActionFailed] = field(default_factory=dict)
    timers_fired: set[str] = field(default_factory=set)
    override_steps: list[str | None] = field(default_factory=list)
    escalation: EscalationReason | None = None
    outcome: Outcome | None = None

    @classmethod
    def of(cls, stated: Iterable[Stated]) -> Iterator[PastRequest]:
        """The requests the workflow's events tell of (a request without `InstanceStarted` in
        them is left out: its payload is unknown), in the order they started."""
        found: dict[UUID, PastRequest] = {}
        for event, at, actor in stated:
            request_id = getattr(event, "request_id", None)
            if not isinstance(request_id, UUID):
                continue
            past = found.get(request_id)
            if past is None:
                if not isinstance(event, InstanceStarted):
                    continue
                past = found[request_id] = cls(request_id, event.request_type)
            past._add(event, at, actor)
        complete = (p for p in found.values() if p.started_at is not None)
        yield from sorted(complete, key=lambda p: (p.started_at, str(p.request_id)))

    def _add(self, event: EventPayload, at: datetime, actor: str | None) -> None:
        match event:
            case InstanceStarted() as p:
                self.requester = p.requester or "unknown"
                self.priority, self.payload = p.priority, p.payload
                self.started_at = at
            case StepEntered() as p:
                self.steps.append(p.step)
            case ApprovalRequested() as p:
                self.approvals.append(p.approver_role)
                self.asked[p.step] = p.approver_role
            case ApprovalDecided() as p:
                self.decided[p.step] = (p, actor, at)
            case ActionFailed() as p:
                self.failed[p.step] = p
            case SlaBreached() as p:
                self.timers_fired.add(f"{p.step}/sla")
            case EscalatedToCase() as p:
                self.escalation = p.reason_code
                if p.reason_code is EscalationReason.APPROVAL_TIMED_OUT:
                    self.timers_fired.add(f"{p.step}/approval-timeout")
            case OverrideApplied() as p:
                self.override_steps.append(p.step)
            case InstanceCompleted() as p:
                self.outcome = p.outcome

    # As the `World` of a replay: what happened answers, where the same point is met.

    def action(self, action: RunAction) -> Trigger:
        failed = self.failed.get(action.step)
        if failed is None:
            return ReportActionSucceeded(step=action.step)
        return ReportActionFailed(step=action.step, attempts=failed.attempts, error=failed.error)

    def fires(self, timer_id: str) -> bool:
        return timer_id in self.timers_fired

    def approves(self, pending: PendingApproval) -> tuple[DecideApproval, datetime] | None:
        if pending.step not in self.decided or self.asked.get(pending.step) != pending.role:
            return None
        decided, actor, when = self.decided[pending.step]
        trigger = DecideApproval(
            step=pending.step,
            decision=decided.decision,
            actor=actor or "unknown",
            rationale=decided.rationale,
            relied_on=tuple(decided.relied_on),
        )
        return trigger, when

    @property
    def run(self) -> Run:
        """What happened, read as a `Run`."""
        if self.escalation is not None:
            end = End.ESCALATED
        elif self.outcome is Outcome.REJECTED:
            end = End.REFUSED
        elif self.outcome is not None:
            end = End.COMPLETED
        else:
            end = End.PENDING
        waiting = self.approvals[-1] if end is End.PENDING and self.approvals else None
        return Run(tuple(self.steps), end, tuple(self.approvals), self.escalation, waiting)


def stored(
    turns_of: Callable[[UUID], list[Turn]],
    request_ids: Iterable[UUID],
    on_request: Callable[[], None] = lambda: None,
) -> list[PastRequest]:
    """The requests as the workflow's store holds them, `turns_of` reading one instance's turns
    (`WorkflowApplication.turns`)."""
    past: list[PastRequest] = []
    for request_id in request_ids:
        past += PastRequest.of(stated_by_turns(turns_of(request_id)))
        on_request()
    return past


class World(Protocol):
    """What the engine cannot decide for a request: its connectors' answers, its timers, its
    people. `None` where this world does not say (the request then waits)."""

    def action(self, action: RunAction) -> Trigger: ...

    def fires(self, timer_id: str) -> bool: ...

    def approves(self, pending: PendingApproval) -> tuple[DecideApproval, datetime] | None: ...


def drive(
    definition: ProcessDefinition, submit: Submit, at: datetime, world: World
) -> list[Decision]:
    """The engine's turns for a request submitted at `at`, `world` answering what it cannot
    decide, until the instance ends or waits for something the world does not say."""
    decisions = [decide(definition, None, submit, at)]
    while True:
        decision = decisions[-1]
        state = decision.state
        assert state is not None
        if state.status is not Status.RUNNING:
            return decisions
        following = _next(definition, state, decision, world)
        if following is None:
            return decisions
        decisions.append(following)


def _next(
    definition: ProcessDefinition, state: InstanceState, decision: Decision, world: World
) -> Decision | None:
    at = decision.turn.at
    for effect in decision.effects:
        if isinstance(effect, RunAction):
            return decide(definition, state, world.action(effect), at)
    for timer_id in state.timers():
        if world.fires(timer_id):
            return decide(definition, state, FireTimer(timer_id=timer_id), at)
    if state.approval is not None and (decided := world.approves(state.approval)):
        trigger, when = decided
        return decide(definition, state, trigger, max(when, at))
    return None


def replay(definition: ProcessDefinition, past: PastRequest) -> Run:
    """The run `definition` gives the request, with history standing in for what the engine
    cannot know (see the module's docstring)."""
    assert past.started_at is not None
    submit = Submit(
        request_id=past.request_id,
        request_type=definition.request_type,
        requester=past.requester,
        priority=past.priority,
        payload=dict(past.payload),
    )
    decisions = drive(definition, submit, past.started_at, past)
    events = [e for decision in decisions for e in decision.turn.events]
    steps = tuple(e.step for e in events if isinstance(e, StepEntered))
    approvals = tuple(e.approver_role for e in events if isinstance(e, ApprovalRequested))
    state = decisions[-1].state
    assert state is not None
    if state.status is not Status.RUNNING:
        return Run(steps, _end(state), approvals, state.escalation)
    waiting = state.approval.role if state.approval else state.current_step
    return Run(steps, End.PENDING, approvals, waiting_for=waiting or "the next trigger")


def _end(state: InstanceState) -> End:
    if state.status is Status.REJECTED:
        return End.REFUSED
    if state.status in (Status.ESCALATED, Status.RESOLVED_BY_CASE):
        return End.ESCALATED
    return End.COMPLETED


@dataclass(frozen=True)
class Figures:
    """One side of the comparison: what the runs add up to."""

    requests: int
    completed: int
    refused_at_validation: int
    escalated: dict[str, int]  # by reason code
    pending: dict[str, int]  # by the role waited for
    approvals: dict[str, int]  # by role
    passed: dict[str, int]  # requests entering each step
    overrides: int
    exception_rate: float | None
    approach: Approach | None
    advice: str

    @classmethod
    def of(cls, runs: list[tuple[Run, int]]) -> Figures:
        """`runs`: each request's run with the overrides it counts."""
        ends = Counter(run.end for run, _ in runs)
        waiting = Counter(run.waiting_for or "?" for run, _ in runs if run.end is End.PENDING)
        escalated = Counter(str(run.escalation) for run, _ in runs if run.end is End.ESCALATED)
        overrides = sum(count for _, count in runs)
        overridden = sum(1 for run, count in runs if count and run.end is not End.ESCALATED)
        volume = len(runs)
        rate = (ends[End.ESCALATED] + overridden) / volume if volume else None
        per_100 = 100 * overrides / volume if volume else None
        approach, advice = approach_for(volume, rate, per_100)
        return cls(
            requests=volume,
            completed=ends[End.COMPLETED],
            refused_at_validation=ends[End.REFUSED],
            escalated=dict(sorted(escalated.items())),
            pending=dict(sorted(waiting.items())),
            approvals=dict(sorted(Counter(role for r, _ in runs for role in r.approvals).items())),
            passed=dict(Counter(step for r, _ in runs for step in dict.fromkeys(r.steps))),
            overrides=overrides,
            exception_rate=rate,
            approach=approach,
            advice=advice,
        )


@dataclass(frozen=True)
class Change:
    """A request whose outcome (`Run.outcome`) the proposed definition changes, and where the
    two routes part."""

    request_id: UUID
    happened: Run
    proposed: Run
    parted_at: str | None  # the first step of one route the other does not take there


@dataclass(frozen=True)
class WhatIf:
    process: str
    proposed_version: int
    happened: Figures
    proposed: Figures
    changes: list[Change]
    not_predicted: tuple[str, ...]


NOT_PREDICTED = (
    "human decisions: an approval is decided as it was where the request faced it at a step of "
    "the same name, asked of the same role; else it stays pending",
    "connector failures: an action fails only where it failed at a step of the same name",
    "timers: an approval timeout or SLA breach fires only where it fired at that step",
    "overrides: not replayed; counted again where the request still reaches the step they were "
    "applied at",
)


def what_if(
    definition: ProcessDefinition,
    history: Iterable[PastRequest],
    on_request: Callable[[], None] = lambda: None,
) -> WhatIf:
    """Every request of the definition's type in `history`, as it happened and as `definition`
    would run it, side by side."""
    happened: list[tuple[Run, int]] = []
    proposed: list[tuple[Run, int]] = []
    changes: list[Change] = []
    for past in history:
        if past.request_type != definition.request_type:
            continue
        actual, predicted = past.run, replay(definition, past)
        happened.append((actual, len(past.override_steps)))
        reached = set(predicted.steps)
        again = sum(1 for step in past.override_steps if step is None or step in reached)
        proposed.append((predicted, again))
        if actual.outcome != predicted.outcome:
            changes.append(Change(past.request_id, actual, predicted, _parted(actual, predicted)))
        on_request()
    return WhatIf(
        process=definition.name,
        proposed_version=definition.version,
        happened=Figures.of(happened),
        proposed=Figures.of(proposed),
        changes=changes,
        not_predicted=NOT_PREDICTED,
    )


def _parted(happened: Run, proposed: Run) -> str | None:
    """The first step the proposed route takes where the other took another; when one route
    is the other cut short, the step where the shorter one stops (it waits, or ends, there)."""
    for mine, theirs in zip(happened.steps, proposed.steps, strict=False):
        if mine != theirs:
            return theirs
    shorter = min(happened.steps, proposed.steps, key=len)
    longer = max(happened.steps, proposed.steps, key=len)
    if shorter:
        return shorter[-1]
    return longer[0] if longer else None
