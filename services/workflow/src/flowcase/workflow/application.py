"""The workflow application: instances kept in an event store, run on their definitions.

It is the seam between the engine and whatever drives it (the intake consumer, the API, the timer
loop, the action runner): each call loads one instance, has it handle one trigger with the
definition version it started with, saves the new events, and returns the effects to carry out
once they are saved. Persistence comes from eventsourcing's environment (in memory by default).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from flowcase.workflow.effects import Effect
from flowcase.workflow.instance import WorkflowInstance, instance_id
from flowcase.workflow.registry import DefinitionRegistry
from flowcase.workflow.state import InstanceState
from flowcase.workflow.triggers import Submit, Trigger


class InstanceNotFound(LookupError):
    pass


class WorkflowApplication(Application[UUID]):
    def __init__(self, definitions: DefinitionRegistry, env: dict[str, Any] | None = None) -> None:
        super().__init__(env)
        self.definitions = definitions

    def submit(self, submission: Submit, at: datetime) -> tuple[Effect, ...]:
        """Start the request's instance on the current version of its definition. A request
        that already has an instance (a redelivered message) changes nothing."""
        if instance_id(submission.request_id) in self.repository:
            return ()
        definition = self.definitions.current(submission.request_type)
        instance, effects = WorkflowInstance.start(definition, submission, at)
        self.save(instance)
        return effects

    def handle(self, request_id: UUID, trigger: Trigger, at: datetime) -> tuple[Effect, ...]:
        instance = self._get(request_id)
        state = instance.state
        definition = self.definitions.get(state.request_type, state.definition_version)
        effects = instance.handle(definition, trigger, at)
        self.save(instance)
        return effects

    def state(self, request_id: UUID) -> InstanceState:
        return self._get(request_id).state

    def _get(self, request_id: UUID) -> WorkflowInstance:
        try:
            instance: WorkflowInstance = self.repository.get(instance_id(request_id))
        except AggregateNotFoundError:
            raise InstanceNotFound(f"no workflow instance for request {request_id}") from None
        return instance
