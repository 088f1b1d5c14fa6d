"""The workflow instance aggregate: one request's journey, recorded event by event.

The engine decides; the aggregate records what it decided, one aggregate event per domain event,
each named like the domain event (and so like its catalogue payload). Each event method applies
the recorded fact through `state.evolve`, so loading an instance from the event store replays it
to exactly the state the engine left.

The facts are stored as JSON-ready dicts, which every eventsourcing transcoder handles without
extra registration; `fact_of` turns a stored event back into the domain event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, DomainEventProtocol, event

from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.effects import Effect
from flowcase.workflow.engine import Decision, decide, decide_unserved
from flowcase.workflow.events import (
    EVENT_TYPES,
    ActionFailed,
    ApprovalDecided,
    ApprovalRequested,
    EscalatedToCase,
    InstanceCompleted,
    InstanceStarted,
    OverrideApplied,
    SlaBreached,
    StepCompleted,
    StepEntered,
    WorkflowEvent,
)
from flowcase.workflow.state import InstanceState, evolve
from flowcase.workflow.triggers import ForceCompletion, ForceRoute, SkipStep, Submit, Trigger

_INSTANCES = uuid5(NAMESPACE_URL, "urn:flowcase:workflow:instance")


def instance_id(request_id: UUID) -> UUID:
    """The one instance id a request can have, so a redelivered intake message finds the
    instance it already started instead of creating a second one."""
    return uuid5(_INSTANCES, str(request_id))


class WorkflowInstance(Aggregate):
    @staticmethod
    def create_id(request_id: UUID) -> UUID:
        return instance_id(request_id)

    @classmethod
    def start(
        cls, definition: ProcessDefinition, submission: Submit, at: datetime
    ) -> tuple[WorkflowInstance, tuple[Effect, ...]]:
        """A new instance of `definition` for `submission`, and the effects of its first steps."""
        return cls._begin(decide(definition, None, submission, at))

    @classmethod
    def start_unserved(cls, submission: Submit, at: datetime) -> WorkflowInstance:
        """The instance of a request no definition serves: rejected as it starts."""
        instance, _ = cls._begin(decide_unserved(submission, at))
        return instance

    @classmethod
    def _begin(cls, decision: Decision) -> tuple[WorkflowInstance, tuple[Effect, ...]]:
        started, *rest = decision.events
        instance = cls(request_id=started.request_id, fact=_stored(started))
        instance._record(rest)
        return instance, decision.effects

    def handle(
        self, definition: ProcessDefinition, trigger: Trigger, at: datetime
    ) -> tuple[Effect, ...]:
        """Apply `trigger` at `at`; `definition` is the version this instance started with. An
        override whose id was already applied changes nothing."""
        if isinstance(trigger, SkipStep | ForceRoute | ForceCompletion) and (
            trigger.override_id in self.override_ids
        ):
            return ()
        decision = decide(definition, self.state, trigger, at)
        self._record(decision.events)
        return decision.effects

    def __deepcopy__(self, memo: dict[int, Any]) -> WorkflowInstance:
        # The state is immutable (frozen dataclasses, read-only mappings) and each event replaces
        # it: a copy for the next trigger (the repository's cache hands out copies) shares it and
        # copies only the containers a trigger changes in place.
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.override_ids = set(self.override_ids)
        copy._pending_events = list(self._pending_events)
        return copy

    @event("InstanceStarted")
    def __init__(self, request_id: UUID, fact: dict[str, Any]) -> None:
        self.request_id = request_id
        self.state: InstanceState = evolve(None, InstanceStarted.model_validate(fact))
        # Overrides are asked for with an id chosen by the caller: a retried request finds its
        # override already applied instead of applying it twice.
        self.override_ids: set[UUID] = set()

    @event("StepEntered")
    def _step_entered(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, StepEntered.model_validate(fact))

    @event("StepCompleted")
    def _step_completed(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, StepCompleted.model_validate(fact))

    @event("ApprovalRequested")
    def _approval_requested(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, ApprovalRequested.model_validate(fact))

    @event("ApprovalDecided")
    def _approval_decided(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, ApprovalDecided.model_validate(fact))

    @event("SlaBreached")
    def _sla_breached(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, SlaBreached.model_validate(fact))

    @event("ActionFailed")
    def _action_failed(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, ActionFailed.model_validate(fact))

    @event("OverrideApplied")
    def _override_applied(self, fact: dict[str, Any]) -> None:
        applied = OverrideApplied.model_validate(fact)
        self.override_ids.add(applied.override_id)
        self.state = evolve(self.state, applied)

    @event("EscalatedToCase")
    def _escalated_to_case(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, EscalatedToCase.model_validate(fact))

    @event("InstanceCompleted")
    def _instance_completed(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, InstanceCompleted.model_validate(fact))

    def _record(self, events: Iterable[WorkflowEvent]) -> None:
        for fact in events:
            stored = _stored(fact)
            match fact:
                case StepEntered():
                    self._step_entered(stored)
                case StepCompleted():
                    self._step_completed(stored)
                case ApprovalRequested():
                    self._approval_requested(stored)
                case ApprovalDecided():
                    self._approval_decided(stored)
                case SlaBreached():
                    self._sla_breached(stored)
                case ActionFailed():
                    self._action_failed(stored)
                case OverrideApplied():
                    self._override_applied(stored)
                case EscalatedToCase():
                    self._escalated_to_case(stored)
                case InstanceCompleted():
                    self._instance_completed(stored)
                case InstanceStarted():
                    raise ValueError("an instance starts once")


def fact_of(stored: DomainEventProtocol[Any]) -> WorkflowEvent:
    """The domain event a stored aggregate event records (for the relay to map)."""
    fact: dict[str, Any] = stored.fact  # type: ignore[attr-defined]
    return EVENT_TYPES[type(stored).__name__].model_validate(fact)


def _stored(fact: WorkflowEvent) -> dict[str, Any]:
    return fact.model_dump(mode="json")
