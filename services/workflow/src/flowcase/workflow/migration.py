"""Moving running instances to another version of their definition: the plan, and what a run
did to each instance.

A plan names the steps renamed between the two versions (a step it does not name keeps its
name) and what happens to the clocks already running:

    steps:
      finance-approval: controller-approval
    timers: carry        # or restart

The engine moves one instance (`triggers.Migrate`), or says why it cannot; this module checks a
plan against the two versions before any instance is looked at, and names the outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from flowcase.events.catalogue.workflow import TimersOnMigration
from flowcase.workflow.definition import ProcessDefinition, StepName, dotted_path
from flowcase.workflow.state import InstanceState, Status


class InvalidPlan(ValueError):
    pass


class MigrationPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: dict[StepName, StepName] = Field(
        default_factory=dict,
        description="Steps renamed in the new version, old name to new; a step not named here "
        "goes on at the step of the same name.",
    )
    timers: TimersOnMigration = Field(
        default=TimersOnMigration.CARRY,
        description="`carry`: each running clock (approval timeout, SLA) keeps its due time; "
        "`restart`: each starts again at the migration.",
    )

    def problems(self, old: ProcessDefinition, new: ProcessDefinition) -> list[str]:
        """Why the plan cannot move instances of `old` to `new` at all (empty if it can)."""
        if old.request_type != new.request_type:
            return [f"{old.request_type} and {new.request_type} are different processes"]
        if old.version == new.version:
            return [f"v{old.version} to v{new.version} moves nothing"]
        problems = [
            f"steps: {step!r} is not a step of v{old.version}"
            for step in self.steps
            if step not in old.step_names
        ]
        problems += [
            f"steps: {step!r} is not a step of v{new.version}"
            for step in self.steps.values()
            if step not in new.step_names
        ]
        return problems


def read_plan(text: str, source: str) -> MigrationPlan:
    """The plan in a YAML document; `InvalidPlan` names the field and the reason."""
    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise InvalidPlan(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    try:
        return MigrationPlan.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{dotted_path(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidPlan(f"{source}: {problems}") from None


class MoveOutcome(StrEnum):
    MOVED = "moved"
    CAN_MOVE = "can_move"
    """A dry run's: the instance would move."""
    CANNOT_MOVE = "cannot_move"
    ALREADY_MOVED = "already_moved"
    """On the new version already: an earlier run (one a crash cut short) moved it."""


@dataclass(frozen=True)
class Move:
    """What a run did, or a dry run would do, to one instance."""

    request_id: UUID
    outcome: MoveOutcome
    step: str | None = None
    """The step it waited at on the old version."""
    now: str | None = None
    """Where it stands on the new version (or would): the step it waits at, or its status."""
    reason: str | None = None
    """Why it cannot move."""


def standing(state: InstanceState) -> str:
    """Where an instance stands, in a few words."""
    if state.status is Status.RUNNING and state.current_step:
        return f"waits at {state.current_step}"
    return str(state.status.value)


@dataclass(frozen=True)
class MigrationPage:
    """One call's share of a run: the instances it looked at, and where the next call starts."""

    migration_id: UUID
    waiting: int
    """Instances on the old version waiting at a step when the call began (all of them)."""
    moves: list[Move]
    next: UUID | None
    """Pass as `after` to go on; None when no instance is left to look at."""
