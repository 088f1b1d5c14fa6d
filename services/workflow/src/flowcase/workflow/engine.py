"""The workflow engine: given a definition, an instance's state and a trigger, what happens next.

`decide` is pure: it reads no clock (`at` is given), does no I/O, and returns the turn it took
(the new events, all at `at`) and the effects for the service to carry out. It changes its
working state only through `state.evolve`, the same fold that replays stored turns, so replaying
the turns it returns reproduces the state it decided on.

A trigger that makes no sense in the instance's state raises `TriggerRefused` (for the API to
report); one that merely arrives late, such as a cancelled timer firing or an action reporting
after the instance moved on, decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from flowcase.events.catalogue import Outcome, Priority, Reason
from flowcase.events.catalogue.workflow import (
    ActionFailed,
    ApprovalDecided,
    ApprovalDecision,
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
    TimersOnMigration,
)
from flowcase.workflow.definition import (
    END,
    ActionStep,
    ApprovalStep,
    BranchStep,
    EscalateStep,
    NotifyStep,
    ProcessDefinition,
    RouteStep,
    SlaStep,
    Step,
    ValidateStep,
)
from flowcase.workflow.effects import (
    CancelTimer,
    Effect,
    RunAction,
    ScheduleTimer,
    SendNotification,
)
from flowcase.workflow.rules import Expression, RuleError
from flowcase.workflow.state import (
    PROMISE_TIMER,
    InstanceState,
    Status,
    Turn,
    evolve,
    fold,
    instance_id,
)
from flowcase.workflow.triggers import (
    CloseByCase,
    DecideApproval,
    FireTimer,
    ForceCompletion,
    ForceRoute,
    Migrate,
    ReportActionFailed,
    ReportActionSucceeded,
    SkipStep,
    Submit,
    Trigger,
)


class TriggerRefused(Exception):
    """The trigger does not apply to the instance as it stands (e.g. approving a step that is
    not waiting for approval)."""


class AlreadyMigrated(TriggerRefused):
    """The instance is on the version a migration would move it to: moved by an earlier run."""


@dataclass(frozen=True)
class Decision:
    turn: Turn
    effects: tuple[Effect, ...]
    state: InstanceState | None


def decide(
    definition: ProcessDefinition,
    state: InstanceState | None,
    trigger: Trigger,
    at: datetime,
) -> Decision:
    """The events and effects `trigger`, happening at `at`, causes. `state` is None before the
    instance starts; `definition` must be the version the instance started with."""
    if state is not None and (
        state.request_type != definition.request_type
        or state.definition_version != definition.version
    ):
        raise ValueError(
            f"instance runs {state.request_type} v{state.definition_version}, "
            f"not {definition.request_type} v{definition.version}"
        )
    turn = _Turn(definition, state, at)
    turn.take(trigger)
    return turn.decision()


class _Turn:
    """One call of `decide`: the working state and what has been decided so far."""

    def __init__(
        self, definition: ProcessDefinition, state: InstanceState | None, at: datetime
    ) -> None:
        self.definition = definition
        self.state = state
        self.at = at
        self.actor: str | None = None
        self.events: list[InstanceEvent] = []
        self.effects: list[Effect] = []
        self._carried_due: datetime | None = None
        """An approval's due time that a migration carries to the step it enters."""
        self._timers_before = state.timers() if state else {}

    def decision(self) -> Decision:
        # Timers follow from the state: arm what it now needs, cancel what it no longer does.
        after = self.state.timers() if self.state else {}
        request_id = self.state.request_id if self.state else None
        timer_effects: list[Effect] = [
            CancelTimer(request_id=request_id, timer_id=timer_id)
            for timer_id in sorted(self._timers_before.keys() - after.keys())
        ]
        timer_effects += [
            ScheduleTimer(request_id=request_id, timer_id=timer_id, fire_at=after[timer_id])
            for timer_id in sorted(after.keys() - self._timers_before.keys())
        ]
        turn = Turn(self.at, tuple(self.events), self.actor)
        return Decision(turn, (*self.effects, *timer_effects), self.state)

    @property
    def now(self) -> InstanceState:
        assert self.state is not None, "only Submit runs before the instance exists"
        return self.state

    def record(self, event: InstanceEvent) -> None:
        self.state = evolve(self.state, event, self.at)
        self.events.append(event)

    def take(self, trigger: Trigger) -> None:
        if self.state is None and not isinstance(trigger, Submit):
            raise TriggerRefused(f"no instance to apply {type(trigger).__name__} to")
        match trigger:
            case Submit():
                # A redelivered submission finds its instance already started.
                if self.state is None:
                    self._start(trigger)
            case DecideApproval():
                self._decide_approval(trigger)
            case FireTimer():
                self._fire_timer(trigger)
            case ReportActionSucceeded():
                self._action_succeeded(trigger)
            case ReportActionFailed():
                self._action_failed(trigger)
            case SkipStep():
                self._skip_step(trigger)
            case ForceRoute():
                self._force_route(trigger)
            case ForceCompletion():
                self._force_completion(trigger)
            case CloseByCase():
                self._close_by_case(trigger)
            case Migrate():
                self._migrate(trigger)

    # Triggers

    def _start(self, submit: Submit) -> None:
        # The clock starts at submission: `at` of a start is the request's submission time.
        within = self.definition.resolve_within.get(submit.priority)
        self.record(
            InstanceStarted(
                request_id=submit.request_id,
                instance_id=instance_id(submit.request_id),
                request_type=self.definition.request_type,
                process=self.definition.name,
                definition_version=self.definition.version,
                priority=submit.priority,
                requester=submit.requester,
                payload=submit.payload,
                due_at=self.at + within if within else None,
            )
        )
        self._run_from(0)

    def _decide_approval(self, trigger: DecideApproval) -> None:
        pending = self._running().approval
        if pending is None or pending.step != trigger.step:
            raise TriggerRefused(f"step {trigger.step!r} is not waiting for an approval")
        self.actor = trigger.actor
        self.record(
            ApprovalDecided(
                request_id=self.now.request_id,
                step=trigger.step,
                decision=trigger.decision,
                rationale=trigger.rationale,
                relied_on=list(trigger.relied_on),
            )
        )
        if trigger.decision is ApprovalDecision.DENIED:
            reason = f"{pending.role} denied the approval"
            if trigger.rationale:
                reason += f": {trigger.rationale}"
            self._escalate(EscalationReason.APPROVAL_DENIED, reason, trigger.step)
            return
        self._complete_step(trigger.step, "approved", role=pending.role, actor=trigger.actor)
        self._run_after(trigger.step)

    def _fire_timer(self, trigger: FireTimer) -> None:
        state = self.now
        if trigger.timer_id not in state.timers():
            return
        if trigger.timer_id == PROMISE_TIMER:
            self._promise_broken(state)
            return
        for window in state.sla_windows:
            if window.timer_id == trigger.timer_id:
                self.record(
                    SlaBreached(
                        request_id=state.request_id,
                        step=window.step,
                        sla_seconds=window.seconds,
                        due_at=window.due_at,
                    )
                )
                what = f"step {window.until!r}" if window.until else "the request"
                reason = f"{what} was not done within the SLA of {window.seconds:g}s"
                self._escalate(EscalationReason.SLA_BREACHED, reason, window.step)
                return
        assert state.approval is not None, "the only other timer is the approval's"
        reason = f"{state.approval.role} did not decide by {state.approval.due_at.isoformat()}"
        self._escalate(EscalationReason.APPROVAL_TIMED_OUT, reason, state.approval.step)

    def _promise_broken(self, state: InstanceState) -> None:
        """The request goes on where it is, now late, along the definition's path for it."""
        assert state.due_at is not None
        path = self.definition.when_promise_broken
        reassign = path.reassign if path else None
        self.record(
            PromiseBroken(
                request_id=state.request_id,
                due_at=state.due_at,
                step=state.current_step,
                raised_to=path.raise_priority if path else None,
                reassigned_to=reassign.team if reassign else None,
                queue=reassign.queue if reassign else None,
            )
        )
        if path is None or path.notify is None:
            return
        message = path.notify
        try:
            recipients = _recipients(message.to, self._variables())
        except RuleError:
            return  # a message nobody can be named for: the statement stands without it
        self.effects.append(
            SendNotification(
                request_id=state.request_id,
                step=PROMISE_TIMER,
                channel=message.channel,
                recipients=recipients,
                template=message.template,
                data=self._variables(),
                idempotency_key=f"{state.request_id}/{PROMISE_TIMER}",
            )
        )

    def _action_succeeded(self, trigger: ReportActionSucceeded) -> None:
        if not self._waits_at_action(trigger.step):
            return
        self._complete_step(
            trigger.step, "succeeded", attempts=trigger.attempts, result=trigger.result
        )
        self._run_after(trigger.step)

    def _action_failed(self, trigger: ReportActionFailed) -> None:
        if not self._waits_at_action(trigger.step):
            return
        self.record(
            ActionFailed(
                request_id=self.now.request_id,
                step=trigger.step,
                attempts=trigger.attempts,
                error=trigger.error,
            )
        )
        reason = f"action failed after {trigger.attempts} attempt(s): {trigger.error}"
        self._escalate(EscalationReason.ACTION_FAILED, reason, trigger.step)

    def _skip_step(self, trigger: SkipStep) -> None:
        state = self._running()
        if state.current_step != trigger.step:
            raise TriggerRefused(f"the instance is not waiting at step {trigger.step!r}")
        rule = state.approval.rule if state.approval else None
        self._override(OverrideKind.SKIP_STEP, trigger, step=trigger.step, rule=rule)
        self._complete_step(trigger.step, "skipped")
        self._run_after(trigger.step)

    def _force_route(self, trigger: ForceRoute) -> None:
        route = self._running().route
        if route is None:
            raise TriggerRefused("no route has been decided yet to force")
        self._override(
            OverrideKind.FORCE_ROUTE, trigger, step=route.step, rule=route.rule, target=trigger.team
        )

    def _force_completion(self, trigger: ForceCompletion) -> None:
        step = self._running().current_step
        self._override(OverrideKind.FORCE_COMPLETION, trigger, step=step)
        if step:
            self._complete_step(step, "force_completed")
        self._finish(Outcome.COMPLETED)

    def _close_by_case(self, trigger: CloseByCase) -> None:
        # Only an escalated instance belongs to a case; a resolution for any other (a redelivered
        # one, or a case opened by hand) has nothing to close.
        if self.now.status is Status.ESCALATED:
            self._finish(Outcome.RESOLVED_BY_CASE, case_id=trigger.case_id)

    def _migrate(self, trigger: Migrate) -> None:
        state = self._running()
        old, new = self.definition, trigger.to
        if new.request_type != state.request_type:
            raise TriggerRefused(f"{new.request_type} v{new.version} is another process")
        if old.version == new.version:
            raise AlreadyMigrated(f"the instance is on v{new.version} already")
        if old.version != trigger.from_version:
            raise TriggerRefused(f"the instance is on v{old.version}, not v{trigger.from_version}")
        waiting = old.step(str(state.current_step))
        if waiting.kind is StepKind.ACTION:
            raise TriggerRefused(
                f"it waits on its action at step {waiting.name!r}, which may be under way; "
                "move it once the action has reported"
            )
        target = trigger.steps.get(waiting.name, waiting.name)
        if target not in new.step_names:
            raise TriggerRefused(
                f"v{new.version} has no step {target!r}: the plan must name the step it goes "
                f"on at instead of {waiting.name!r}"
            )
        entered = new.step(target)
        if entered.kind is not waiting.kind:
            raise TriggerRefused(
                f"step {waiting.name!r} is of kind {waiting.kind.value}, {target!r} of "
                f"v{new.version} of kind {entered.kind.value}"
            )
        if misfits := _misfits(new, dict(state.payload)):
            raise TriggerRefused(
                f"its payload does not fit v{new.version}'s schema: "
                + "; ".join(f"{r.field}: {r.reason}" for r in misfits)
            )
        start = new.index_of(target)
        for window in state.sla_windows:
            until = trigger.steps.get(window.until, window.until) if window.until else None
            if until is not None and (until not in new.step_names or new.index_of(until) < start):
                raise TriggerRefused(
                    f"its SLA from step {window.step!r} runs until step {window.until!r}, which "
                    f"v{new.version} does not reach from {target!r}: that clock would never stop"
                )
        self.actor = trigger.actor
        self.record(
            InstanceMigrated(
                request_id=state.request_id,
                migration_id=trigger.migration_id,
                from_version=old.version,
                to_version=new.version,
                step=waiting.name,
                to_step=target,
                steps=trigger.steps,
                timers=trigger.timers,
                reason=trigger.reason,
            )
        )
        if trigger.timers is TimersOnMigration.CARRY and state.approval is not None:
            self._carried_due = state.approval.due_at
        self.definition = new
        self._run_from(start)

    # Running the steps

    def _run_from(self, index: int) -> None:
        """Run steps from `index` until one has to wait or the instance leaves the path."""
        steps = self.definition.steps
        while self.now.status is Status.RUNNING:
            if index >= len(steps):
                self._finish(Outcome.COMPLETED)
                return
            step = steps[index]
            try:
                next_index = self._enter(step, index)
            except RuleError as exc:
                reason = f"rule failed at {step.name}: {exc}"
                self._escalate(EscalationReason.RULE, reason, step.name)
                return
            if next_index is None:
                return
            index = next_index

    def _run_after(self, step_name: str) -> None:
        self._run_from(self.definition.index_of(step_name) + 1)

    def _enter(self, step: Step, index: int) -> int | None:
        """Enter `step`; the index of the step to run next, or None to stop here."""
        # Governance measures each step's wait against its SLA: an approval's is its timeout.
        due = None
        if isinstance(step, SlaStep):
            due = self.at + step.within
        elif isinstance(step, ApprovalStep):
            due = self._carried_due or self.at + step.timeout
            self._carried_due = None
        self.record(
            StepEntered(
                request_id=self.now.request_id,
                step=step.name,
                kind=step.kind,
                sla_due_at=due,
            )
        )
        match step:
            case ValidateStep():
                return self._validate(step, index)
            case RouteStep():
                return self._route(step, index)
            case SlaStep():
                self._complete_step(step.name, "started", until=step.until)
                return index + 1
            case ApprovalStep():
                assert due is not None
                return self._request_approval(step, index, due)
            case ActionStep():
                self._run_action(step)
                return None
            case NotifyStep():
                self._notify(step)
                return index + 1
            case BranchStep():
                return self._branch(step)
            case EscalateStep():
                return self._escalate_by_rule(step, index)
            case _:
                assert_never(step)

    def _validate(self, step: ValidateStep, index: int) -> int | None:
        variables = self._variables()
        payload = variables["payload"]
        reasons = _misfits(self.definition, payload)
        reasons += [
            Reason(field=f"payload.{path}", reason="is required")
            for path in step.required
            if _lookup(payload, path) in (None, "", [], {})
        ]
        for check in step.rules:
            try:
                passed = check.rule.holds(variables)
            except RuleError as exc:
                reasons.append(Reason(field="", reason=f"{check.message} ({exc})"))
                continue
            if not passed:
                reasons.append(Reason(field="", reason=check.message))
        if not reasons:
            self._complete_step(step.name, "valid")
            return index + 1
        reasons.sort(key=lambda r: (r.field, r.reason))
        self._complete_step(step.name, "invalid", reasons=[r.model_dump() for r in reasons])
        self._finish(Outcome.REJECTED, reasons=tuple(reasons))
        return None

    def _route(self, step: RouteStep, index: int) -> int:
        variables = self._variables()
        chosen, rule = next(
            ((r, r.when.source) for r in step.rules if r.when.holds(variables)),
            (step.otherwise, None),
        )
        self._complete_step(step.name, chosen.team, team=chosen.team, queue=chosen.queue, rule=rule)
        return index + 1

    def _request_approval(self, step: ApprovalStep, index: int, due: datetime) -> int | None:
        variables = self._variables()
        approver = next((a for a in step.approvers if a.when.holds(variables)), None)
        if approver is None:
            self._complete_step(step.name, "not_required")
            return index + 1
        self.record(
            ApprovalRequested(
                request_id=self.now.request_id,
                step=step.name,
                approver_role=approver.role,
                rule=approver.when.source,
                due_at=due,
            )
        )
        return None

    def _run_action(self, step: ActionStep) -> None:
        self.effects.append(_action(step, self.now))

    def _notify(self, step: NotifyStep) -> None:
        variables = self._variables()
        recipients = _recipients(step.to, variables)
        self.effects.append(
            SendNotification(
                request_id=self.now.request_id,
                step=step.name,
                channel=step.channel,
                recipients=recipients,
                template=step.template,
                data=variables,
                idempotency_key=f"{self.now.request_id}/{step.name}",
            )
        )
        self._complete_step(
            step.name, "sent", channel=step.channel, to=list(recipients), template=step.template
        )

    def _branch(self, step: BranchStep) -> int | None:
        variables = self._variables()
        case = next((c for c in step.cases if c.when.holds(variables)), None)
        if case is None:
            reason = "no branch condition matched: " + ", ".join(
                f"`{c.when.source}`" for c in step.cases
            )
            self._escalate(EscalationReason.NO_BRANCH_MATCHED, reason, step.name)
            return None
        self._complete_step(step.name, case.goto, rule=case.when.source)
        if case.goto == END:
            return len(self.definition.steps)
        return self.definition.index_of(case.goto)

    def _escalate_by_rule(self, step: EscalateStep, index: int) -> int | None:
        if step.when is not None and not step.when.holds(self._variables()):
            self._complete_step(step.name, "not_escalated", rule=step.when.source)
            return index + 1
        self._escalate(EscalationReason.RULE, step.reason, step.name, priority=step.priority)
        return None

    # Recording

    def _complete_step(self, step_name: str, outcome: str, **detail: Any) -> None:
        self.record(
            StepCompleted(
                request_id=self.now.request_id,
                step=step_name,
                kind=self.definition.step(step_name).kind,
                outcome=outcome,
                detail=detail,
            )
        )

    def _escalate(
        self,
        reason_code: EscalationReason,
        reason: str,
        step: str,
        priority: Priority | None = None,
    ) -> None:
        """Hand the request to a case. The step in progress closes with the reason code as its
        outcome, so the history the case receives has no dangling step."""
        if self.now.current_step:
            self._complete_step(self.now.current_step, reason_code.value)
        state = self.now
        self.record(
            EscalatedToCase(
                request_id=state.request_id,
                request_type=state.request_type,
                process=state.process,
                definition_version=state.definition_version,
                reason_code=reason_code,
                reason=reason,
                step=step,
                priority=priority or state.priority,
                requester=state.requester,
                intake_payload=dict(state.payload),
                history=state.history,
                submitted_at=state.submitted_at,
                due_at=state.due_at,
            )
        )

    def _override(
        self,
        kind: OverrideKind,
        trigger: SkipStep | ForceRoute | ForceCompletion,
        *,
        step: str | None,
        rule: str | None = None,
        target: str | None = None,
    ) -> None:
        self.actor = trigger.actor
        self.record(
            OverrideApplied(
                request_id=self.now.request_id,
                override_id=trigger.override_id,
                override=kind,
                step=step,
                rule=rule,
                definition_version=self.now.definition_version,
                target=target,
                reason=trigger.reason,
                relied_on=list(trigger.relied_on),
            )
        )

    def _finish(self, outcome: Outcome, **fields: Any) -> None:
        self.record(InstanceCompleted(request_id=self.now.request_id, outcome=outcome, **fields))

    # Reading the state

    def _running(self) -> InstanceState:
        if self.now.status is not Status.RUNNING:
            raise TriggerRefused(f"the instance is {self.now.status.value}, not running")
        return self.now

    def _waits_at_action(self, step: str) -> bool:
        state = self.now
        return (
            state.status is Status.RUNNING
            and state.current_step == step
            and state.current_kind is StepKind.ACTION
        )

    def _variables(self) -> dict[str, Any]:
        return variables_of(self.now)


def decide_unserved(submit: Submit, at: datetime) -> Decision:
    """A request whose type no definition serves: its instance starts and ends at once, rejected
    with the reason, so the request still reaches exactly one terminal outcome. Version 0 and an
    empty process name say that no definition ran it."""
    reason = Reason(
        field="request_type",
        reason=f"no process definition serves request type {submit.request_type!r}",
    )
    events: tuple[InstanceEvent, ...] = (
        InstanceStarted(
            request_id=submit.request_id,
            instance_id=instance_id(submit.request_id),
            request_type=submit.request_type,
            process="",
            definition_version=0,
            priority=submit.priority,
            requester=submit.requester,
            payload=submit.payload,
        ),
        InstanceCompleted(request_id=submit.request_id, outcome=Outcome.REJECTED, reasons=[reason]),
    )
    turn = Turn(at, events)
    return Decision(turn, (), fold(None, turn))


def pending_action(definition: ProcessDefinition, state: InstanceState) -> RunAction | None:
    """The action a running instance waits on, as the engine asked for it when it entered the
    step: for a service that restarted before the action reported back."""
    if state.status is not Status.RUNNING or state.current_kind is not StepKind.ACTION:
        return None
    step = definition.step(str(state.current_step))
    assert isinstance(step, ActionStep)
    return _action(step, state)


def variables_of(state: InstanceState) -> dict[str, Any]:
    """What a definition's expressions see."""
    return {
        "payload": dict(state.payload),
        "request": {
            "id": str(state.request_id),
            "type": state.request_type,
            "requester": state.requester,
            "priority": state.priority.value,
        },
        "state": {
            "team": state.route.team if state.route else "",
            "queue": (state.route.queue or "") if state.route else "",
            "outputs": dict(state.outputs),
        },
    }


def _action(step: ActionStep, state: InstanceState) -> RunAction:
    variables = variables_of(state)
    return RunAction(
        request_id=state.request_id,
        step=step.name,
        connector=step.connector,
        operation=step.operation,
        input={key: value.evaluate(variables) for key, value in step.input.items()},
        idempotency_key=f"{state.request_id}/{step.name}",
        attempts=step.retry.attempts,
        backoff=step.retry.backoff,
        max_backoff=step.retry.max_backoff,
    )


def _misfits(definition: ProcessDefinition, payload: dict[str, Any]) -> list[Reason]:
    """Where the payload breaks the definition's request schema."""
    return [
        Reason(field=".".join(["payload", *map(str, e.absolute_path)]), reason=e.message)
        for e in definition.payload_schema.errors(payload)
    ]


def _recipients(to: Expression, variables: dict[str, Any]) -> tuple[str, ...]:
    """Whom `to` names: one recipient or a list of them; RuleError when it names neither."""
    named = to.evaluate(variables)
    found = (named,) if isinstance(named, str) else tuple(named) if isinstance(named, list) else ()
    if not found or not all(isinstance(r, str) and r for r in found):
        raise RuleError(f"`{to.source}` gave {named!r}, not a recipient or a list of them")
    return found


def _lookup(payload: dict[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
