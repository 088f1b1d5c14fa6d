"""The workflow application: instances kept in an event store, run on their definitions.

It is the seam between the engine and whatever drives it (the intake consumer, the API, the timer
loop, the action runner): each call loads one instance, has it handle one trigger with the
definition version it started with, saves the new events, and returns the effects to carry out
once they are saved. Persistence comes from eventsourcing's environment (in memory by default,
PostgreSQL in the service through `flowcase.eventstore.postgres_env`). A call made for a consumed
Kafka message passes its `tracking` record, which commits in the same transaction as the events,
so a redelivered message changes nothing.

A save that fails may have committed all the same: the connection lost between COMMIT and its
answer, and the library's own retry then refused as a conflict with what the first try stored.
So every failed save is kept in `unconfirmed`, with the effects it decided, and `saved` tells
later whether it is in the store.

The calls are synchronous (the eventsourcing library is); async code runs them in a thread.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from queue import SimpleQueue
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError, Tracking
from opentelemetry.context import Context

from flowcase.eventstore import TrackedApplication
from flowcase.workflow.effects import Effect, RunAction
from flowcase.workflow.engine import TriggerRefused, pending_action
from flowcase.workflow.instance import WorkflowInstance, turn_of
from flowcase.workflow.registry import DefinitionRegistry, UnknownRequestType
from flowcase.workflow.state import InstanceState, Turn, instance_id
from flowcase.workflow.step_spans import Traced, step_spans
from flowcase.workflow.triggers import Submit, Trigger

Start = tuple[Submit, datetime, Context | None]
"""A request to start, when it was submitted, and the context of the message that carried it."""
Handling = tuple[UUID, Trigger, Context | None]
"""A trigger for a request's instance, and the context it is applied under."""


class InstanceNotFound(LookupError):
    pass


@dataclass(frozen=True)
class UnconfirmedSave:
    """One instance's part of a failed save: its last new event (by version and timestamp,
    which no other save repeats), and the effects to carry out if it is stored after all."""

    request_id: UUID
    instance_id: UUID
    version: int
    timestamp: datetime
    effects: tuple[Effect, ...]


class WorkflowApplication(TrackedApplication):
    def __init__(self, definitions: DefinitionRegistry, env: dict[str, Any] | None = None) -> None:
        super().__init__(env)
        self.definitions = definitions
        self.unconfirmed: SimpleQueue[UnconfirmedSave] = SimpleQueue()
        """Saves that failed, to look for in the store (`saved`) once it answers again."""

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
        instance, effects = self._start(submission, at)
        try:
            self._save([(instance, None)], tracking, {instance.id: effects})
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
        instance, effects = self._decide(request_id, trigger, at)
        self._save([(instance, None)], tracking, {instance.id: effects})
        return effects

    def start_all(self, starts: Sequence[Start], tracking: Tracking) -> list[tuple[Effect, ...]]:
        """Start many requests' instances in one transaction with the tracking record of the
        last message (a consumed batch); the effects of each, in order. Raises eventsourcing's
        `RecordConflictError` when one of them has an instance already (a request published
        twice, a batch redelivered): the caller then takes them one at a time through
        `submit`, which tells those apart."""
        traced: list[Traced] = []
        effects: list[tuple[Effect, ...]] = []
        for submission, at, context in starts:
            instance, started = self._start(submission, at)
            traced.append((instance, context))
            effects.append(started)
        self._save(traced, tracking, {i.id: e for (i, _), e in zip(traced, effects, strict=True)})
        return effects

    def handle_all(
        self, handlings: Sequence[Handling], at: datetime
    ) -> list[tuple[Effect, ...] | InstanceNotFound | TriggerRefused]:
        """Apply many triggers and save every instance they change in one transaction. Each
        result is the trigger's effects, or the error that refused it (nothing saved for it).
        Raises `RecordConflictError` when another writer saved one of the instances first: the
        caller applies them one at a time (`handle`), each with its own retry."""
        loaded: dict[UUID, Traced] = {}
        decided: dict[UUID, tuple[Effect, ...]] = {}
        results: list[tuple[Effect, ...] | InstanceNotFound | TriggerRefused] = []
        for request_id, trigger, context in handlings:
            try:
                if request_id in loaded:
                    instance = loaded[request_id][0]
                    effects = self._handle(instance, trigger, at)
                else:
                    instance, effects = self._decide(request_id, trigger, at)
            except (InstanceNotFound, TriggerRefused) as refused:
                results.append(refused)
                continue
            results.append(effects)
            loaded.setdefault(request_id, (instance, context))
            decided[instance.id] = decided.get(instance.id, ()) + effects
        self._save(list(loaded.values()), None, decided)
        return results

    def state(self, request_id: UUID) -> InstanceState:
        return self._get(request_id).state

    def rehearse(self, request_id: UUID, trigger: Trigger, at: datetime) -> InstanceState:
        """The state `trigger` would leave the stored instance in; nothing is saved. Raises as
        `handle` does."""
        instance = self._get(request_id)
        self._handle(instance, trigger, at)
        return instance.state

    def saved(self, save: UnconfirmedSave) -> bool:
        """Whether that save is in the store: its last event is, and no other save's event of
        the same version (a retry of the same trigger decides again, at another time)."""
        stored = list(
            self.repository.event_store.get(save.instance_id, gt=save.version - 1, lte=save.version)
        )
        return bool(stored) and cast(Aggregate.Event, stored[0]).timestamp == save.timestamp

    def instance(self, id_: UUID, *, at_least: int = 0) -> WorkflowInstance:
        """The instance by its own id (as the notification log names it). With `at_least`, the
        one this process saved last will do when it is at that version or later: a projection
        following the log needs no newer state than the log's, and is spared a load."""
        cache = self.repository.cache
        if at_least and cache is not None:
            try:
                held = cache.get(id_)
            except KeyError:
                pass
            else:
                if isinstance(held, WorkflowInstance) and held.version >= at_least:
                    return held
        instance: WorkflowInstance = self.repository.get(id_)
        return instance

    def turns(self, request_id: UUID) -> list[Turn]:
        """Every turn of the request's instance, in order."""
        stored = list(self.repository.event_store.get(instance_id(request_id)))
        if not stored:
            raise InstanceNotFound(f"no workflow instance for request {request_id}")
        return [turn_of(event) for event in stored]

    def pending_action(self, request_id: UUID) -> RunAction | None:
        """The action the instance waits on, if it waits on one."""
        state = self.state(request_id)
        if state.definition_version == 0:
            return None
        definition = self.definitions.get(state.request_type, state.definition_version)
        return pending_action(definition, state)

    def _start(
        self, submission: Submit, at: datetime
    ) -> tuple[WorkflowInstance, tuple[Effect, ...]]:
        try:
            definition = self.definitions.current(submission.request_type)
        except UnknownRequestType:
            return WorkflowInstance.start_unserved(submission, at), ()
        return WorkflowInstance.start(definition, submission, at)

    def _decide(
        self, request_id: UUID, trigger: Trigger, at: datetime
    ) -> tuple[WorkflowInstance, tuple[Effect, ...]]:
        """The instance `trigger` changes, and its effects. Decided first on the instance this
        process saved last, without asking the store whether another writer saved it since:
        if one did, the save conflicts, the held instance is dropped (`_save`) and the caller's
        retry decides on the stored one. A trigger the held instance refuses or ignores is
        decided again on the stored one, since that proves nothing about a stale instance."""
        held = self._held(request_id)
        if held is not None:
            with contextlib.suppress(TriggerRefused):
                effects = self._handle(held, trigger, at)
                if held.pending_events:
                    return held, effects
        instance = self._get(request_id)
        return instance, self._handle(instance, trigger, at)

    def _held(self, request_id: UUID) -> WorkflowInstance | None:
        """A copy of the request's instance as this process last saved or loaded it, if it
        holds one."""
        if self.repository.cache is None:
            return None
        try:
            held = self.repository.cache.get(instance_id(request_id))
        except KeyError:
            return None
        return copy.deepcopy(cast(WorkflowInstance, held))

    def _handle(
        self, instance: WorkflowInstance, trigger: Trigger, at: datetime
    ) -> tuple[Effect, ...]:
        state = instance.state
        if state.definition_version == 0:
            raise TriggerRefused(f"the instance is {state.status.value}: no definition serves it")
        definition = self.definitions.get(state.request_type, state.definition_version)
        return instance.handle(definition, trigger, at)

    def _save(
        self,
        traced: Sequence[Traced],
        tracking: Tracking | None,
        effects: Mapping[UUID, tuple[Effect, ...]],
    ) -> None:
        """Save the instances' new events; `effects` are what each decided (by instance id)."""
        instances = [instance for instance, _ in traced]
        unconfirmed = [
            UnconfirmedSave(
                request_id=instance.state.request_id,
                instance_id=instance.id,
                version=instance.pending_events[-1].originator_version,
                timestamp=instance.pending_events[-1].timestamp,
                effects=effects.get(instance.id, ()),
            )
            for instance in instances
            if instance.pending_events
        ]
        try:
            with step_spans(traced):
                if tracking is None:
                    self.save(*instances)
                else:
                    self.save_tracked(*instances, tracking=tracking)
        except Exception:
            for save in unconfirmed:
                self.unconfirmed.put(save)
            # Held instances may be behind what is stored now (another writer's save, or this
            # one's committed unheard): the next trigger loads them.
            if self.repository.cache is not None:
                for instance in instances:
                    with contextlib.suppress(KeyError):
                        self.repository.cache.get(instance.id, evict=True)
            raise
        # Saved instances stay in memory: the next trigger of a request (its action's report,
        # moments later) is decided on the held instance (`_decide`).
        if self.repository.cache is not None:
            for instance in instances:
                self.repository.cache.put(instance.id, instance)

    def _record_consumed(self, tracking: Tracking | None) -> None:
        if tracking is not None and not self.consumed(tracking):
            self.save_tracked(tracking=tracking)

    def _get(self, request_id: UUID) -> WorkflowInstance:
        try:
            instance: WorkflowInstance = self.repository.get(instance_id(request_id))
        except AggregateNotFoundError:
            raise InstanceNotFound(f"no workflow instance for request {request_id}") from None
        return instance
