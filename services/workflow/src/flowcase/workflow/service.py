"""The service layer: what the consumers, the API and the timer loop ask of the workflow, and
the effects each decision leaves to carry out.

Every call runs the (synchronous) event-store application on a small thread pool, never on the
event loop. Effects run after their events are saved: actions and notifications through the
connectors, each report fed back to the instance as a trigger. Timers need nothing here: the
projection derives them from the saved events (`projection.py`).

Actions follow from what is stored, not from what a caller saw of its commit. A service that
stops while an action is in flight finds the instance still waiting at that step when it starts
again and runs the action again (`run`), with the same idempotency key. A save that fails may
still have committed (the connection lost between COMMIT and its answer): the application keeps
each failed save with the effects it decided, and once the store answers they are carried out
if the save is there. A slower sweep runs the action of any instance left waiting
on one for `action_recovery_after` that nothing here is running, whatever the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import RecordConflictError, Tracking
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from flowcase.events.catalogue.case import CaseResolved
from flowcase.events.catalogue.intake import RequestSubmitted
from flowcase.events.tracing import untraced
from flowcase.workflow.application import (
    InstanceNotFound,
    UnconfirmedSave,
    WorkflowApplication,
)
from flowcase.workflow.catalogue_mapping import close_from, submit_from
from flowcase.workflow.connectors import ActionConnector, run_action
from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.effects import Effect, RunAction, SendNotification
from flowcase.workflow.engine import AlreadyMigrated, TriggerRefused
from flowcase.workflow.migration import (
    InvalidPlan,
    MigrationPage,
    MigrationPlan,
    Move,
    MoveOutcome,
    standing,
)
from flowcase.workflow.read_model import ReadModel
from flowcase.workflow.state import InstanceState, Turn
from flowcase.workflow.triggers import FireTimer, Migrate, ReportActionFailed, Trigger
from flowcase.workflow.what_if import WhatIf, stored, what_if

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]

_CONFLICT_RETRIES = 5
# Notifications have no retry policy in the definitions; these keep a flaky mail relay harmless.
_NOTIFY_ATTEMPTS = 3
# Enough to take a burst in a few transactions; few enough to keep one transaction short.
_REPORTS_PER_TRANSACTION = 200
# Actions carried out lately, by idempotency key: a recovery that read an instance just before
# its report was saved must not run the action again. Far more than are ever in flight at once.
_RECENT_ACTIONS = 50_000


class WorkflowService:
    def __init__(
        self,
        application: WorkflowApplication,
        read_model: ReadModel,
        connectors: Mapping[str, ActionConnector],
        clock: Clock,
        *,
        threads: int = 8,
        recover_after: asyncio.Event | None = None,
        max_effects_in_flight: int = 200,
        action_recovery_after: timedelta = timedelta(minutes=2),
    ) -> None:
        self.app = application
        self._read_model = read_model
        self._connectors = connectors
        self._clock = clock
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="workflow-store")
        self._recover_after = recover_after
        self._action_recovery_after = action_recovery_after
        self._actions_in_flight: set[str] = set()
        self._actions_done: OrderedDict[str, None] = OrderedDict()
        self._unconfirmed: list[UnconfirmedSave] = []  # failed saves still to look for
        self._look_again = asyncio.Event()
        self.actions_recovered = 0
        """Actions run again because nothing here was running them (at start, by the sweep)."""
        self.saves_confirmed = 0
        """Failed saves found stored after all, their effects carried out then."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._max_in_flight = max_effects_in_flight
        self._room = asyncio.Event()
        self._room.set()
        self._stopping = asyncio.Event()
        self._reports: list[tuple[UUID, Trigger, Context, asyncio.Future[None]]] = []
        self._report_writer: asyncio.Task[None] | None = None

    # The worker: recovers interrupted actions, then keeps the effect tasks until stopped

    async def run(self) -> None:
        try:
            if self._recover_after is not None:
                await self._recover_after.wait()
            await self._resume_actions(await self._read_model.waiting_on_actions())
            await self._keep_actions_following_the_store()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _keep_actions_following_the_store(self) -> None:
        sweep_every = self._action_recovery_after.total_seconds() / 4
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + sweep_every
        failures = 0
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._look_again.wait(), max(next_sweep - loop.time(), 0))
            self._look_again.clear()
            try:
                await self._settle_unconfirmed()
                if loop.time() >= next_sweep:
                    with untraced():  # a poll: nobody's request
                        waiting = await self._read_model.waiting_on_actions(
                            # The store stamps events with the wall clock, not the service's.
                            unchanged_since=datetime.now(UTC) - self._action_recovery_after
                        )
                    await self._resume_actions(waiting)
                    next_sweep = loop.time() + sweep_every
                failures = 0
            except Exception as exc:
                # The store is still away: look again once it may be back.
                failures += 1
                delay = min(0.2 * 2**failures, 30.0)
                log.warning("could not look for unfinished effects, again in %.1fs: %r", delay, exc)
                await asyncio.sleep(delay)
                self._look_again.set()

    async def _settle_unconfirmed(self) -> None:
        while not self.app.unconfirmed.empty():
            self._unconfirmed.append(self.app.unconfirmed.get_nowait())
        while self._unconfirmed and not self._stopping.is_set():
            save = self._unconfirmed[0]
            if await self._store(self.app.saved, save):
                self.saves_confirmed += 1
                log.info("a save of request %s was stored unconfirmed", save.request_id)
                self._carry_out(save.effects)
            # Otherwise nothing was stored: whoever asked for the save tries again.
            self._unconfirmed.pop(0)

    async def _resume_actions(self, request_ids: Iterable[UUID]) -> None:
        for request_id in request_ids:
            if self._stopping.is_set():
                return
            try:
                action = await self._store(self.app.pending_action, request_id)
            except InstanceNotFound:
                continue  # a start that was never saved: the consumer delivers it again
            if action is not None and self._run_once(action):
                self.actions_recovered += 1
                log.info("resuming action %s of request %s", action.step, request_id)

    def stop(self) -> None:
        self._stopping.set()
        self._look_again.set()

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def room_for_more(self) -> None:
        """Wait while too many effects are in flight. The consumer asks before it starts more
        requests: an overloaded service then finishes what it started at its full rate, and the
        rest waits in Kafka (visible as lag), rather than every request slowing to a crawl."""
        await self._room.wait()

    async def idle(self) -> None:
        """Wait until no effect is in flight (tests and the benchmark)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # Consumed messages: the tracking record commits with the events

    async def consumed(self, tracking: Tracking) -> bool:
        return await self._store(self.app.consumed, tracking)

    async def last_consumed(self, partition: str) -> int | None:
        return await self._store(self.app.last_consumed, partition)

    async def start_request(self, submitted: RequestSubmitted, tracking: Tracking) -> None:
        effects = await self._save(
            self.app.submit,
            submit_from(submitted),
            submitted.submitted_at,
            tracking=tracking,
        )
        self._carry_out(effects)

    async def start_requests(
        self, submitted: Sequence[tuple[RequestSubmitted, Context]], tracking: Tracking
    ) -> None:
        """Start a consumed batch's requests in one transaction, each under its message's
        context; raises `RecordConflictError` when one of them has started already (the
        consumer then goes one message at a time)."""
        starts = [(submit_from(s), s.submitted_at, context) for s, context in submitted]
        effects = await self._save(self.app.start_all, starts, tracking)
        for (_, context), started in zip(submitted, effects, strict=True):
            token = otel_context.attach(context)
            try:
                self._carry_out(started)
            finally:
                otel_context.detach(token)

    async def close_by_case(self, resolved: CaseResolved, tracking: Tracking) -> None:
        closing = close_from(resolved)
        if closing is None:
            return
        request_id, trigger = closing
        try:
            await self._apply(request_id, trigger, tracking=tracking)
        except (InstanceNotFound, TriggerRefused) as exc:
            # A case opened by hand, or one for an instance that cannot close: nothing to do.
            log.info("case %s resolved; no instance to close: %s", resolved.case_id, exc)

    # People (the API) and time (the timer loop)

    async def apply(self, request_id: UUID, trigger: Trigger) -> InstanceState:
        """Apply a person's trigger now; raises InstanceNotFound or TriggerRefused."""
        await self._apply(request_id, trigger)
        return await self.state(request_id)

    async def fire_timer(self, request_id: UUID, timer_id: str) -> None:
        try:
            await self._apply(request_id, FireTimer(timer_id=timer_id))
        except (InstanceNotFound, TriggerRefused) as exc:
            log.warning("timer %s of request %s not delivered: %s", timer_id, request_id, exc)

    async def state(self, request_id: UUID) -> InstanceState:
        return await self._store(self.app.state, request_id)

    async def turns(self, request_id: UUID) -> list[Turn]:
        return await self._store(self.app.turns, request_id)

    async def what_if(self, definition: ProcessDefinition, request_ids: list[UUID]) -> WhatIf:
        """The proposal against the stored requests: read and decided in a thread of its own,
        not the store's executor, which the event path needs meanwhile."""

        def run() -> WhatIf:
            return what_if(definition, stored(self.app.turns, request_ids))

        return await asyncio.to_thread(contextvars.copy_context().run, run)

    async def migrate(
        self,
        request_type: str,
        from_version: int,
        to_version: int,
        plan: MigrationPlan,
        *,
        actor: str,
        reason: str,
        migration_id: UUID,
        dry_run: bool = False,
        after: UUID | None = None,
        limit: int = 500,
    ) -> MigrationPage:
        """Move up to `limit` of the instances waiting on `from_version` (by request id, after
        `after`) to `to_version`, each in a transaction of its own: a run cut short leaves every
        instance on one version, and a second run moves the rest. A dry run decides each on the
        stored instance and saves nothing. Raises `UnknownRequestType` for a version not
        published here, `InvalidPlan` for a plan that does not fit the two versions."""
        old = self.app.definitions.get(request_type, from_version)
        new = self.app.definitions.get(request_type, to_version)
        if problems := plan.problems(old, new):
            raise InvalidPlan("; ".join(problems))
        trigger = Migrate(
            from_version=from_version,
            to=new,
            steps=plan.steps,
            timers=plan.timers,
            actor=actor,
            reason=reason,
            migration_id=migration_id,
        )
        waiting = await self._read_model.count_waiting(request_type, from_version)
        page = await self._read_model.waiting(request_type, from_version, after=after, limit=limit)
        moves = [await self._move(request_id, step, trigger, dry_run) for request_id, step in page]
        outcomes = Counter(move.outcome.value for move in moves)
        # The audit log's line; each moved instance's own history says who and why as well.
        log.info(
            "%s %s of %s v%d -> v%d by %s (%s): %s",
            "dry run of migration" if dry_run else "migration",
            migration_id,
            request_type,
            from_version,
            to_version,
            actor,
            reason,
            dict(outcomes) or "no instance waiting",
        )
        last = page[-1][0] if len(page) == limit else None
        return MigrationPage(migration_id, waiting, moves, last)

    async def _move(
        self, request_id: UUID, step: str | None, migrate: Migrate, dry_run: bool
    ) -> Move:
        try:
            if dry_run:
                state = await self._store(self.app.rehearse, request_id, migrate, self._clock())
            else:
                state = await self.apply(request_id, migrate)
        except AlreadyMigrated:
            return Move(request_id, MoveOutcome.ALREADY_MOVED, step)
        except (TriggerRefused, InstanceNotFound) as exc:
            return Move(request_id, MoveOutcome.CANNOT_MOVE, step, reason=str(exc))
        outcome = MoveOutcome.CAN_MOVE if dry_run else MoveOutcome.MOVED
        return Move(request_id, outcome, step, standing(state))

    # Effects

    def _carry_out(self, effects: tuple[Effect, ...]) -> None:
        for effect in effects:
            match effect:
                case RunAction():
                    self._run_once(effect)
                case SendNotification():
                    self._spawn(self._notify(effect))
                case _:
                    pass  # ScheduleTimer / CancelTimer: the projection derives timers from events

    def _run_once(self, action: RunAction) -> bool:
        """Start `action` unless it is under way or done here; say whether it started. A step is
        entered once per instance (definitions only jump forward), so its idempotency key names
        one execution."""
        key = action.idempotency_key
        if key in self._actions_in_flight or key in self._actions_done:
            return False
        self._actions_in_flight.add(key)
        self._spawn(self._run_action(action))
        return True

    async def _run_action(self, action: RunAction) -> None:
        try:
            await self._carry_out_action(action)
        finally:
            self._actions_in_flight.discard(action.idempotency_key)

    async def _carry_out_action(self, action: RunAction) -> None:
        report = await run_action(self._connectors, action)
        delay = 0.1
        while not self._stopping.is_set():
            try:
                await self._record_report(action.request_id, report)
                self._done(action)
                return
            except (InstanceNotFound, TriggerRefused) as exc:
                log.info("report of %s for %s ignored: %s", action.step, action.request_id, exc)
                self._done(action)
                return
            except Exception as exc:
                # The store is away: keep the report and try again; a restart re-runs the action.
                log.warning("could not record the report of %s, retrying: %r", action.step, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _done(self, action: RunAction) -> None:
        self._actions_done[action.idempotency_key] = None
        if len(self._actions_done) > _RECENT_ACTIONS:
            self._actions_done.popitem(last=False)

    async def _notify(self, notification: SendNotification) -> None:
        """A notify step is complete once decided (outcome `sent`); delivery is best effort
        through the connector named like the channel, and a failed delivery is logged."""
        connector = self._connectors.get(notification.channel)
        if connector is None:
            # The recipients are addresses, often from the payload: counted, never logged.
            log.info(
                "notification %s (%s) to %d recipient(s): no %r connector, not delivered",
                notification.template,
                notification.idempotency_key,
                len(notification.recipients),
                notification.channel,
            )
            return
        report = await connector.run(
            RunAction(
                request_id=notification.request_id,
                step=notification.step,
                connector=notification.channel,
                operation=notification.template,
                input={"recipients": list(notification.recipients), "data": notification.data},
                idempotency_key=notification.idempotency_key,
                attempts=_NOTIFY_ATTEMPTS,
                backoff=timedelta(seconds=1),
                max_backoff=timedelta(seconds=10),
            )
        )
        if isinstance(report, ReportActionFailed):
            log.warning("notification %s failed: %s", notification.idempotency_key, report.error)

    # Reports of actions: many saved in one transaction (group commit)

    async def _record_report(self, request_id: UUID, report: Trigger) -> None:
        """Apply an action's report. Reports that arrive while a save is under way wait and are
        saved together in the next transaction, so a burst of completed actions costs a few
        transactions, and a lone report waits for none."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reports.append((request_id, report, otel_context.get_current(), future))
        if self._report_writer is None or self._report_writer.done():
            # In a context of its own: the shared transaction belongs to no one request's trace.
            self._report_writer = asyncio.create_task(
                self._write_reports(), context=contextvars.Context()
            )
        await future

    async def _write_reports(self) -> None:
        while self._reports:
            batch = self._reports[:_REPORTS_PER_TRANSACTION]
            del self._reports[:_REPORTS_PER_TRANSACTION]
            handlings = [(request_id, report, context) for request_id, report, context, _ in batch]
            try:
                results = await self._save(
                    self.app.handle_all,
                    handlings,
                    self._clock(),
                )
            except RecordConflictError:
                # Another writer saved one of these instances first: each on its own, retried.
                for request_id, report, context, future in batch:
                    await self._settle(future, self._apply(request_id, report), context)
                continue
            except Exception as exc:
                for *_, future in batch:
                    future.set_exception(exc)
                continue
            for (*_, context, future), result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    future.set_exception(result)
                    continue
                token = otel_context.attach(context)
                try:
                    self._carry_out(result)
                finally:
                    otel_context.detach(token)
                future.set_result(None)

    @staticmethod
    async def _settle(
        future: asyncio.Future[None], work: Coroutine[Any, Any, None], context: Context
    ) -> None:
        token = otel_context.attach(context)
        try:
            await work
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(None)
        finally:
            otel_context.detach(token)

    # Plumbing

    async def _apply(
        self, request_id: UUID, trigger: Trigger, *, tracking: Tracking | None = None
    ) -> None:
        for attempt in range(1, _CONFLICT_RETRIES + 1):
            try:
                effects = await self._save(
                    self.app.handle,
                    request_id,
                    trigger,
                    self._clock(),
                    tracking=tracking,
                )
            except RecordConflictError:
                # Another trigger saved the instance first: decide again on the new state.
                if attempt == _CONFLICT_RETRIES:
                    raise
                continue
            self._carry_out(effects)
            return

    async def _save(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Store through `fn`; a save of it that failed is looked for as soon as may be (the
        caller sees the store's error, or none, and retries as it always has)."""
        try:
            return await self._store(fn, *args, **kwargs)
        finally:
            if not self.app.unconfirmed.empty():
                self._look_again.set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        if len(self._tasks) >= self._max_in_flight:
            self._room.clear()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if len(self._tasks) < self._max_in_flight:
            self._room.set()

    async def _store(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        # In the caller's context: the events are stored under its trace (and request id).
        call = partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)
