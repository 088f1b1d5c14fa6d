"""Where an instance stands, as a fold over its events.

The events are the catalogue's own (`flowcase.events.catalogue.workflow`): what the workflow
decides, stores, folds and publishes is one model per event. They are decided in turns: a
`Turn` is what one trigger caused, all at one time, and is stored as one record.

`evolve` is the only way state changes, for the engine deciding a trigger and for the aggregate
replaying its stored turns alike; that is why a replay reproduces the state exactly. It needs no
definition: every event carries what the state keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from flowcase.events.catalogue import Outcome, Priority
from flowcase.events.catalogue.workflow import (
    ApprovalDecided,
    ApprovalRequested,
    EscalatedToCase,
    EscalationReason,
    InstanceCompleted,
    InstanceEvent,
    InstanceMigrated,
    InstanceStarted,
    OverrideApplied,
    OverrideKind,
    PromiseBroken,
    SlaBreached,
    StepCompleted,
    StepEntered,
    StepKind,
    StepRecord,
    TimersOnMigration,
)

_INSTANCES = uuid5(NAMESPACE_URL, "urn:flowcase:workflow:instance")

PROMISE_TIMER = "request/promise"
"""The timer of the request's promise (`due_at`), armed while the instance runs."""


def instance_id(request_id: UUID) -> UUID:
    """The one instance id a request can have, so a redelivered intake message finds the
    instance it already started instead of creating a second one."""
    return uuid5(_INSTANCES, str(request_id))


class Status(StrEnum):
    RUNNING = "running"
    ESCALATED = "escalated"
    COMPLETED = Outcome.COMPLETED.value
    REJECTED = Outcome.REJECTED.value
    RESOLVED_BY_CASE = Outcome.RESOLVED_BY_CASE.value


@dataclass(frozen=True)
class Route:
    team: str
    queue: str | None
    step: str
    rule: str | None


@dataclass(frozen=True)
class PendingApproval:
    step: str
    role: str
    rule: str
    due_at: datetime

    @property
    def timer_id(self) -> str:
        return f"{self.step}/approval-timeout"


@dataclass(frozen=True)
class SlaWindow:
    """An open SLA: met when step `until` (or the instance) completes before `due_at`."""

    step: str
    due_at: datetime
    seconds: float
    until: str | None = None

    @property
    def timer_id(self) -> str:
        return f"{self.step}/sla"


def _frozen_dict() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Turn:
    """The events one trigger caused, in order, at the time it was given; `actor` is the person
    who acted (an approver, the author of an override), if one did."""

    at: datetime
    events: tuple[InstanceEvent, ...]
    actor: str | None = None

    def actor_of(self, event: InstanceEvent) -> str | None:
        """Who acted, for the event that states the person's act (a decided approval, an
        override, a migration); the events that followed from it are the workflow's own."""
        acts = ApprovalDecided | OverrideApplied | InstanceMigrated
        return self.actor if isinstance(event, acts) else None


@dataclass(frozen=True)
class InstanceState:
    request_id: UUID
    request_type: str
    process: str
    definition_version: int
    priority: Priority
    requester: str
    payload: Mapping[str, Any]
    status: Status = Status.RUNNING
    current_step: str | None = None
    history: tuple[StepRecord, ...] = ()
    route: Route | None = None
    approval: PendingApproval | None = None
    sla_windows: tuple[SlaWindow, ...] = ()
    outputs: Mapping[str, Any] = field(default_factory=_frozen_dict)
    escalation: EscalationReason | None = None
    override_ids: frozenset[UUID] = frozenset()
    """Overrides applied, by the id their caller chose: a retried override is recognised."""
    submitted_at: datetime | None = None
    due_at: datetime | None = None
    """The request's promise (`resolve_within`), carried into a case if it escalates."""
    promise_broken: bool = False

    def _changed(self, **changes: Any) -> InstanceState:
        # dataclasses.replace runs __init__, setting the sixteen fields one by one through the
        # frozen guard (about 10 µs); a turn changes the state a dozen times, so copy the fields
        # at once. Nothing in __init__ computes or checks a field, so the copy is the same state.
        assert changes.keys() <= self.__dict__.keys(), f"not fields: {changes.keys()}"
        changed = object.__new__(InstanceState)
        changed.__dict__.update(self.__dict__, **changes)
        return changed

    @property
    def is_terminal(self) -> bool:
        return self.status not in (Status.RUNNING, Status.ESCALATED)

    @property
    def current_kind(self) -> StepKind | None:
        for record in reversed(self.history):
            if record.step == self.current_step:
                return record.kind
        return None

    def timers(self) -> dict[str, datetime]:
        """The timers this state needs armed, by id. Only a running instance waits on time."""
        if self.status is not Status.RUNNING:
            return {}
        armed = {window.timer_id: window.due_at for window in self.sla_windows}
        if self.approval:
            armed[self.approval.timer_id] = self.approval.due_at
        if self.due_at is not None and not self.promise_broken:
            armed[PROMISE_TIMER] = self.due_at
        return armed


def evolve(state: InstanceState | None, event: InstanceEvent, at: datetime) -> InstanceState:
    """The state after `event`, which happened at `at`."""
    if state is None:
        if not isinstance(event, InstanceStarted):
            raise ValueError(f"an instance begins with InstanceStarted, not {type(event).__name__}")
        return InstanceState(
            request_id=event.request_id,
            request_type=event.request_type,
            process=event.process,
            definition_version=event.definition_version,
            priority=event.priority,
            requester=event.requester or "",
            payload=MappingProxyType(dict(event.payload)),
            submitted_at=at,
            due_at=event.due_at,
        )
    match event:
        case StepEntered():
            record = StepRecord(step=event.step, kind=event.kind, entered_at=at)
            state = state._changed(current_step=event.step, history=(*state.history, record))
            if event.kind is StepKind.SLA and event.sla_due_at:
                seconds = (event.sla_due_at - at).total_seconds()
                window = SlaWindow(event.step, event.sla_due_at, seconds)
                state = state._changed(sla_windows=(*state.sla_windows, window))
            return state
        case StepCompleted():
            return _step_completed(state, event, at)
        case ApprovalRequested():
            assert event.due_at is not None, "the engine gives every approval its timeout"
            pending = PendingApproval(event.step, event.approver_role, event.rule, event.due_at)
            return state._changed(approval=pending)
        case ApprovalDecided():
            return state._changed(approval=None)
        case SlaBreached():
            return state._changed(sla_windows=_without(state.sla_windows, event.step))
        case PromiseBroken():
            state = state._changed(promise_broken=True)
            if event.raised_to is not None:
                state = state._changed(priority=event.raised_to)
            if event.reassigned_to is not None:
                route = Route(event.reassigned_to, event.queue, PROMISE_TIMER, None)
                state = state._changed(route=route)
            return state
        case OverrideApplied():
            state = state._changed(override_ids=state.override_ids | {event.override_id})
            if event.override is OverrideKind.FORCE_ROUTE:
                route = Route(str(event.target), None, str(event.step), event.rule)
                state = state._changed(route=route)
            return state
        case InstanceMigrated():
            return _migrated(state, event, at)
        case EscalatedToCase():
            return state._changed(status=Status.ESCALATED, escalation=event.reason_code)
        case InstanceCompleted():
            return state._changed(status=Status(event.outcome.value), current_step=None)
        case _:
            # The rest (ActionFailed) are followed by the events that change the state; they
            # themselves are there for the record.
            return state


def fold(state: InstanceState | None, turn: Turn) -> InstanceState:
    """The state after every event of `turn`."""
    for event in turn.events:
        state = evolve(state, event, turn.at)
    if state is None:
        raise ValueError("a turn has at least one event")
    return state


def replay(turns: Iterable[Turn]) -> InstanceState:
    state: InstanceState | None = None
    for turn in turns:
        state = fold(state, turn)
    if state is None:
        raise ValueError("no turns to replay")
    return state


def _step_completed(state: InstanceState, event: StepCompleted, at: datetime) -> InstanceState:
    history = _closed(state.history, event.step, at, event.outcome)
    windows = tuple(w for w in state.sla_windows if w.until != event.step)
    changes: dict[str, Any] = {"current_step": None, "history": history}
    if event.kind is StepKind.SLA:
        windows = tuple(
            replace(w, until=event.detail.get("until")) if w.step == event.step else w
            for w in windows
        )
    elif event.kind is StepKind.ROUTE and "team" in event.detail:
        detail = event.detail
        changes["route"] = Route(detail["team"], detail.get("queue"), event.step, detail["rule"])
    elif event.kind is StepKind.ACTION and "result" in event.detail:
        changes["outputs"] = MappingProxyType({**state.outputs, event.step: event.detail["result"]})
    if state.approval and state.approval.step == event.step:
        changes["approval"] = None
    return state._changed(sla_windows=windows, **changes)


def _migrated(state: InstanceState, event: InstanceMigrated, at: datetime) -> InstanceState:
    """On the new version, between steps: the step it waited at is closed, its approval gone
    (the new step asks again), and each open SLA runs until the step's new name."""
    history = _closed(state.history, event.step, at, "migrated")
    restart = event.timers is TimersOnMigration.RESTART
    windows = tuple(
        replace(
            w,
            until=event.steps.get(w.until, w.until) if w.until else None,
            due_at=at + timedelta(seconds=w.seconds) if restart else w.due_at,
        )
        for w in state.sla_windows
    )
    return state._changed(
        definition_version=event.to_version,
        current_step=None,
        history=history,
        approval=None,
        sla_windows=windows,
    )


def _closed(
    history: tuple[StepRecord, ...], step: str, at: datetime, outcome: str
) -> tuple[StepRecord, ...]:
    """The history with the latest entry of `step` completed at `at` with `outcome`."""
    for index in range(len(history) - 1, -1, -1):
        if history[index].step == step:
            done = history[index].model_copy(update={"completed_at": at, "outcome": outcome})
            return (*history[:index], done, *history[index + 1 :])
    return history


def _without(windows: tuple[SlaWindow, ...], step: str) -> tuple[SlaWindow, ...]:
    return tuple(w for w in windows if w.step != step)
