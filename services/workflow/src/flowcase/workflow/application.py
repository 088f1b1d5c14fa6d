"""The workflow application: instances kept in an event store, run on their definitions.

It is the seam between the engine and whatever drives it (the intake consumer, the API, the timer
loop, the action runner): each call loads one instance, has it handle one trigger with the
definition version it started with, saves the new events, and returns the effects to carry out
once they are saved. Persistence comes from eventsourcing's environment (in memory by default,
PostgreSQL in the service through `flowcase.eventstore.postgres_env`). A call made for a consumed
Kafka message passes its `tracking` record, which commits in the same transaction as the events,
so a redelivered message changes nothing.

The calls are synchronous (the eventsourcing library is); async code runs them in a thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError, Tracking

from flowcase.eventstore import TrackedApplication
from flowcase.workflow.effects import Effect, RunAction
from flowcase.workflow.engine import TriggerRefused, pending_action
from flowcase.workflow.events import WorkflowEvent
from flowcase.workflow.instance import WorkflowInstance, fact_of, instance_id
from flowcase.workflow.registry import DefinitionRegistry, UnknownRequestType
from flowcase.workflow.state import InstanceState
from flowcase.workflow.step_spans import step_spans
from flowcase.workflow.triggers import Submit, Trigger


class InstanceNotFound(LookupError):
    pass


class WorkflowApplication(TrackedApplication):
    def __init__(self, definitions: DefinitionRegistry, env: dict[str, Any] | None = None) -> None:
        super().__init__(env)
        self.definitions = definitions

    def submit(
        self, submission: Submit, at: datetime, *, tracking: Tracking | None = None
    ) -> tuple[Effect, ...]:
        """Start the request's instance on the current version of its definition. A request
        that already has an instance (a redelivered message, or the same request published
        twice) changes nothing. A request type no definition serves starts an instance that is
        rejected at once, with the reason."""
        if instance_id(submission.request_id) in self.repository:
            self._record_consumed(tracking)
            return ()
        effects: tuple[Effect, ...]
        try:
            definition = self.definitions.current(submission.request_type)
        except UnknownRequestType:
            instance, effects = WorkflowInstance.start_unserved(submission, at), ()
        else:
            instance, effects = WorkflowInstance.start(definition, submission, at)
        try:
            self._save(instance, tracking)
        except RecordConflictError:
            # Another consumer started it a moment ago: the deterministic id made them collide.
            if instance_id(submission.request_id) not in self.repository:
                raise
            return ()
        return effects

    def handle(
        self,
        request_id: UUID,
        trigger: Trigger,
        at: datetime,
        *,
        tracking: Tracking | None = None,
    ) -> tuple[Effect, ...]:
        """Apply `trigger`; raises `TriggerRefused` when it does not apply now, and
        eventsourcing's `RecordConflictError` when another writer saved the instance first (load
        again and retry)."""
        instance = self._get(request_id)
        state = instance.state
        if state.definition_version == 0:
            raise TriggerRefused(f"the instance is {state.status.value}: no definition serves it")
        definition = self.definitions.get(state.request_type, state.definition_version)
        effects = instance.handle(definition, trigger, at)
        self._save(instance, tracking)
        return effects

    def state(self, request_id: UUID) -> InstanceState:
        return self._get(request_id).state

    def instance(self, id_: UUID) -> WorkflowInstance:
        """The instance by its own id (as the notification log names it)."""
        instance: WorkflowInstance = self.repository.get(id_)
        return instance

    def instance_events(self, request_id: UUID) -> list[WorkflowEvent]:
        """Every event of the request's instance, in order."""
        stored = list(self.repository.event_store.get(instance_id(request_id)))
        if not stored:
            raise InstanceNotFound(f"no workflow instance for request {request_id}")
        return [fact_of(event) for event in stored]

    def pending_action(self, request_id: UUID) -> RunAction | None:
        """The action the instance waits on, if it waits on one."""
        state = self.state(request_id)
        if state.definition_version == 0:
            return None
        definition = self.definitions.get(state.request_type, state.definition_version)
        return pending_action(definition, state)

    def _save(self, instance: WorkflowInstance, tracking: Tracking | None) -> None:
        with step_spans(instance):
            if tracking is None:
                self.save(instance)
            else:
                self.save_tracked(instance, tracking=tracking)

    def _record_consumed(self, tracking: Tracking | None) -> None:
        if tracking is not None and not self.consumed(tracking):
            self.save_tracked(tracking=tracking)

    def _get(self, request_id: UUID) -> WorkflowInstance:
        try:
            instance: WorkflowInstance = self.repository.get(instance_id(request_id))
        except AggregateNotFoundError:
            raise InstanceNotFound(f"no workflow instance for request {request_id}") from None
        return instance
