"""A process definition: the declared path of one request type, step by step.

Definitions are data (YAML files, see README.md); this module says what a valid one is. Steps run
in order; only a `branch` jumps, and only forward, so every instance reaches an end in at most as
many steps as the definition has.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from flowcase.events.catalogue import Priority
from flowcase.events.catalogue.workflow import StepKind
from flowcase.events.payload_schema import PayloadSchema
from flowcase.workflow.rules import Expression

END = "end"
"""The `goto` of a branch case that completes the instance."""

_DURATION = re.compile(r"(\d+)([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: Any) -> Any:
    """`90s`, `15m`, `4h`, `2d`, `1w`, or combined like `1h30m`; other values pass to pydantic."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or _DURATION.sub("", text):
        raise ValueError(f"{value!r} is not a duration like 90s, 15m, 4h, 2d or 1h30m")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(text))
    if seconds == 0:
        raise ValueError("a duration must be longer than zero")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
StepName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=80)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Step(_Part):
    name: StepName
    title: str = ""


class Check(_Part):
    rule: Expression
    message: str = Field(min_length=1, description="Told to the requester when the rule fails.")


class ValidateStep(_Step):
    """Rejects the request unless it matches the request schema, has every required field and
    passes every rule."""

    kind: Literal[StepKind.VALIDATE]
    required: list[str] = Field(default_factory=list, description="Dotted paths into the payload.")
    rules: list[Check] = Field(default_factory=list)


class Route(_Part):
    team: Name
    queue: Name | None = None


class RouteRule(Route):
    when: Expression


class RouteStep(_Step):
    """Assigns the first matching team (and queue), else the `otherwise` one."""

    kind: Literal[StepKind.ROUTE]
    rules: list[RouteRule] = Field(default_factory=list)
    otherwise: Route


class SlaStep(_Step):
    """Opens a service-level window: unless step `until` (or, without one, the instance) completes
    within `within`, the SLA is breached and the request escalates."""

    kind: Literal[StepKind.SLA]
    within: Duration
    until: StepName | None = None


class ApproverRule(_Part):
    when: Expression
    role: Name


class ApprovalStep(_Step):
    """Asks the role of the first matching rule to approve within `timeout`; with no match the
    approval is not required."""

    kind: Literal[StepKind.APPROVAL]
    approvers: list[ApproverRule] = Field(min_length=1)
    timeout: Duration


class RetryPolicy(_Part):
    attempts: int = Field(default=3, ge=1, le=20)
    backoff: Duration = Field(default=timedelta(seconds=1), description="Wait before attempt 2.")
    max_backoff: Duration = Field(default=timedelta(minutes=1))


class ActionStep(_Step):
    """Has a connector carry out an idempotent side effect, retried per `retry`."""

    kind: Literal[StepKind.ACTION]
    connector: Name
    operation: Name
    input: dict[str, Expression] = Field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()


class NotifyStep(_Step):
    """Sends a templated message; `to` gives one recipient or a list."""

    kind: Literal[StepKind.NOTIFY]
    channel: Name
    to: Expression
    template: Name


class BranchCase(_Part):
    when: Expression
    goto: StepName


class BranchStep(_Step):
    """Jumps to the `goto` of the first matching case (`end` completes the instance); when no
    case matches the request has left the defined path and escalates."""

    kind: Literal[StepKind.BRANCH]
    cases: list[BranchCase] = Field(min_length=1)


class EscalateStep(_Step):
    """Escalates to a case when `when` holds (always, without one), for the stated reason."""

    kind: Literal[StepKind.ESCALATE]
    when: Expression | None = None
    reason: str = Field(min_length=1)
    priority: Priority | None = Field(default=None, description="Raises the case's priority.")


Step = Annotated[
    ValidateStep
    | RouteStep
    | SlaStep
    | ApprovalStep
    | ActionStep
    | NotifyStep
    | BranchStep
    | EscalateStep,
    Field(discriminator="kind"),
]


class InconsistentSteps(ValueError):
    """Steps that refer to steps they cannot reach. Each problem keeps its own location (relative
    to the definition) so the YAML loader can point at the offending line."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(f"{dotted_path(loc)}: {reason}" for loc, reason in problems))
        self.problems = problems


class Message(_Part):
    """A templated message: `to` gives one recipient or a list."""

    channel: Name
    to: Expression
    template: Name


class WhenPromiseBroken(_Part):
    """What happens when a request is still in the workflow at its promised time."""

    raise_priority: Priority | None = None
    reassign: Route | None = Field(default=None, description="The team (and queue) it goes to.")
    notify: Message | None = None


class ProcessDefinition(_Part):
    name: StepName = Field(description="The process, in kebab-case, e.g. `invoice-approval`.")
    version: int = Field(ge=1)
    request_type: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=100)
    title: Name
    description: str = ""
    request_schema: dict[str, Any] = Field(description="JSON Schema of the intake payload.")
    resolve_within: dict[Priority, Duration] = Field(
        default_factory=dict,
        description="The promise to the requester, by priority (`{urgent: 4h, normal: 3d}`): "
        "from submission to resolution, in the workflow and in a case alike. A priority not "
        "named is promised nothing.",
    )
    when_promise_broken: WhenPromiseBroken | None = Field(
        default=None,
        description="The escalation path of a request still in the workflow at its promised "
        "time: raise its priority, reassign it, notify someone.",
    )
    steps: list[Step] = Field(min_length=1)

    @field_validator("request_schema")
    @classmethod
    def _is_a_json_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return schema

    @model_validator(mode="after")
    def _steps_refer_forward(self) -> ProcessDefinition:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            if step.name in seen:
                problems.append((("steps", index, "name"), f"step {step.name!r} is named twice"))
            seen.add(step.name)
        for index, step in enumerate(self.steps):
            if isinstance(step, BranchStep):
                for case_index, case in enumerate(step.cases):
                    if case.goto != END and not self._later(index, case.goto):
                        problems.append(
                            (
                                ("steps", index, "cases", case_index, "goto"),
                                f"{case.goto!r} is not a later step (nor `{END}`)",
                            )
                        )
            if isinstance(step, SlaStep) and step.until and not self._later(index, step.until):
                problems.append((("steps", index, "until"), f"{step.until!r} is not a later step"))
        if problems:
            raise InconsistentSteps(problems)
        return self

    @cached_property
    def payload_schema(self) -> PayloadSchema:
        """`request_schema` compiled, once per loaded definition, for the validate steps."""
        return PayloadSchema(self.request_schema)

    @cached_property
    def step_names(self) -> frozenset[str]:
        return frozenset(step.name for step in self.steps)

    def _later(self, index: int, name: str) -> bool:
        return any(step.name == name for step in self.steps[index + 1 :])

    def index_of(self, step_name: str) -> int:
        for index, step in enumerate(self.steps):
            if step.name == step_name:
                return index
        raise KeyError(step_name)

    def step(self, step_name: str) -> Step:
        return self.steps[self.index_of(step_name)]


def dotted_path(loc: tuple[str | int, ...]) -> str:
    """`('steps', 2, 'timeout')` -> `steps[2].timeout`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text
