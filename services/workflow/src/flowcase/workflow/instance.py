"""The workflow instance aggregate: one request's journey, recorded turn by turn.

The engine decides; the aggregate records each `Turn` it took (the events one trigger caused) as
one stored event, and keeps the state the engine computed rather than folding the turn again.
Loading an instance folds its stored turns through `state.fold`, the engine's own fold, to
exactly the state the engine left.

A turn's events are stored as catalogue JSON (`{"event_type": ..., "payload": ...}`), which every
eventsourcing transcoder handles without registration. Instances stored in the first format, one
stored event per event named after it, load through eventsourcing's upcasting (`class_version`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol, event
from eventsourcing.utils import register_topic

from flowcase.events.catalogue import REGISTRY
from flowcase.events.catalogue.workflow import InstanceEvent
from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.effects import Effect
from flowcase.workflow.engine import Decision, decide, decide_unserved
from flowcase.workflow.state import InstanceState, Turn, fold, instance_id
from flowcase.workflow.triggers import ForceCompletion, ForceRoute, SkipStep, Submit, Trigger

# The state the engine computed for the turn being recorded: the event's apply takes it instead
# of folding the turn a second time. Unset while an instance is loaded from the store.
_decided: ContextVar[InstanceState | None] = ContextVar("flowcase_decided_state", default=None)


class WorkflowInstance(Aggregate):
    class InstanceStarted(Aggregate.Created):
        """The turn that started the instance (its first event is `workflow.InstanceStarted`)."""

        class_version = 2
        request_id: UUID
        at: datetime
        events: list[dict[str, Any]]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(_first_format("InstanceStarted", state.pop("fact")))
            del state["actor"]

    class Advanced(Aggregate.Event):
        """A later turn."""

        at: datetime
        actor: str | None
        events: list[dict[str, Any]]

        def apply(self, aggregate: Any) -> None:
            decided = _decided.get()
            if decided is None:  # loaded from the store: the turn is read and folded
                decided = fold(aggregate.state, _turn(self.at, self.actor, self.events))
            aggregate.state = decided

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
        turn = decision.turn
        with _taking(decision):
            instance = cls(
                request_id=decision.turn.events[0].request_id,
                at=turn.at,
                events=_stored(turn.events),
            )
        return instance, decision.effects

    def handle(
        self, definition: ProcessDefinition, trigger: Trigger, at: datetime
    ) -> tuple[Effect, ...]:
        """Apply `trigger` at `at`; `definition` is the version this instance started with. An
        override whose id was already applied changes nothing."""
        if isinstance(trigger, SkipStep | ForceRoute | ForceCompletion) and (
            trigger.override_id in self.state.override_ids
        ):
            return ()
        decision = decide(definition, self.state, trigger, at)
        if decision.turn.events:
            turn = decision.turn
            with _taking(decision):
                self.trigger_event(
                    self.Advanced, at=turn.at, actor=turn.actor, events=_stored(turn.events)
                )
        return decision.effects

    def __deepcopy__(self, memo: dict[int, Any]) -> WorkflowInstance:
        # The state is immutable (frozen dataclasses, read-only mappings) and each turn replaces
        # it: a copy for the next trigger (the repository's cache hands out copies) shares it and
        # copies only the list of pending events, which a trigger changes in place.
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._pending_events = list(self._pending_events)
        return copy

    @event(InstanceStarted)
    def __init__(self, request_id: UUID, at: datetime, events: list[dict[str, Any]]) -> None:
        self.request_id = request_id
        self.state: InstanceState = _decided.get() or fold(None, _turn(at, None, events))


@contextmanager
def _taking(decision: Decision) -> Iterator[None]:
    token = _decided.set(decision.state)
    try:
        yield
    finally:
        _decided.reset(token)


def turn_of(stored: DomainEventProtocol[Any]) -> Turn:
    """The turn a stored aggregate event records (for the relay and the API)."""
    recorded = cast(WorkflowInstance.Advanced, stored)
    return _turn(recorded.at, getattr(recorded, "actor", None), recorded.events)


def _stored(events: tuple[InstanceEvent, ...]) -> list[dict[str, Any]]:
    return [{"event_type": e.event_type, "payload": e.model_dump(mode="json")} for e in events]


def _turn(at: datetime, actor: str | None, events: list[dict[str, Any]]) -> Turn:
    return Turn(
        at,
        tuple(
            cast(InstanceEvent, REGISTRY[e["event_type"]].model_validate(e["payload"]))
            for e in events
        ),
        actor,
    )


# The first stored format: one stored event per event, `fact` holding the payload's fields with
# the event time (`at`) and, for a person's act, the `actor`. -----------------------------------

_FIRST_FORMAT_NAMES = (
    "StepEntered",
    "StepCompleted",
    "ApprovalRequested",
    "ApprovalDecided",
    "SlaBreached",
    "ActionFailed",
    "OverrideApplied",
    "EscalatedToCase",
    "InstanceCompleted",
)


def _first_format(name: str, fact: dict[str, Any]) -> dict[str, Any]:
    """The state of a turn of one event, from a first-format stored event named `name`."""
    payload = dict(fact)
    at = datetime.fromisoformat(payload.pop("at"))
    actor = payload.pop("actor", None)
    if name == "InstanceStarted":
        payload["instance_id"] = str(instance_id(UUID(payload["request_id"])))
    return {
        "at": at,
        "actor": actor,
        "events": [{"event_type": f"workflow.{name}", "payload": payload}],
    }


def _first_format_class(name: str) -> type[WorkflowInstance.Advanced]:
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state.update(_first_format(name, state.pop("fact")))

    return type(
        name,
        (WorkflowInstance.Advanced,),
        {
            "__qualname__": f"WorkflowInstance.{name}",
            "__module__": __name__,
            "class_version": 2,
            "upcast_v1_v2": staticmethod(upcast_v1_v2),
        },
    )


for _name in _FIRST_FORMAT_NAMES:
    register_topic(f"{__name__}:WorkflowInstance.{_name}", _first_format_class(_name))
