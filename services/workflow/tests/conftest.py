from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.definition_files import load_folder, parse_definition, shipped_folder
from flowcase.workflow.effects import Effect
from flowcase.workflow.engine import Decision, decide
from flowcase.workflow.events import WorkflowEvent
from flowcase.workflow.state import InstanceState
from flowcase.workflow.triggers import Submit, Trigger

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
REQUEST_ID = UUID("0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69")


class Journey:
    """Drives one instance through the engine, keeping its state, events and a clock."""

    def __init__(self, definition: ProcessDefinition, request_id: UUID = REQUEST_ID) -> None:
        self.definition = definition
        self.request_id = request_id
        self.state: InstanceState | None = None
        self.events: list[WorkflowEvent] = []
        self.clock = T0
        self.last = Decision((), (), None)

    def submit(self, payload: dict[str, Any], **fields: Any) -> Decision:
        fields.setdefault("requester", "jdoe@example.com")
        return self.send(
            Submit(
                request_id=self.request_id,
                request_type=self.definition.request_type,
                payload=payload,
                **fields,
            )
        )

    def send(self, trigger: Trigger, after: timedelta = timedelta(0)) -> Decision:
        self.clock += after
        self.last = decide(self.definition, self.state, trigger, self.clock)
        self.state = self.last.state
        self.events += self.last.events
        return self.last

    @property
    def now(self) -> InstanceState:
        assert self.state is not None
        return self.state

    def effects(self, kind: type[Effect]) -> list[Any]:
        return [e for e in self.last.effects if isinstance(e, kind)]

    def of(self, kind: type[WorkflowEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def outcomes(self) -> list[tuple[str, str]]:
        """(step, outcome) of every completed step, in order."""
        return [(r.step, r.outcome or "") for r in self.now.history if r.completed_at]


@pytest.fixture(scope="session")
def shipped() -> dict[str, ProcessDefinition]:
    return {d.request_type: d for d in load_folder(shipped_folder())}


def _definition(
    steps: str, *, schema: str = "{type: object}", version: int = 1
) -> ProcessDefinition:
    """A definition of request type `test_type` with the given YAML `steps` list."""
    text = f"name: test-process\nversion: {version}\nrequest_type: test_type\ntitle: Test\n"
    text += f"request_schema: {schema}\nsteps:\n" + textwrap.indent(textwrap.dedent(steps), "  ")
    return parse_definition(text, "test.yaml")


@pytest.fixture
def definition() -> Callable[..., ProcessDefinition]:
    return _definition


@pytest.fixture
def journey() -> type[Journey]:
    return Journey
