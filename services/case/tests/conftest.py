from __future__ import annotations

import pytest

from flowcase.case.aggregate import Case
from flowcase.case.application import CaseApplication
from flowcase.events.catalogue.workflow import EscalatedToCase


@pytest.fixture
def app() -> CaseApplication:
    # Named explicitly: an environment configured for PostgreSQL must not leak into unit tests.
    return CaseApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
def escalation() -> EscalatedToCase:
    return EscalatedToCase.model_validate(
        {
            "request_id": "0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69",
            "request_type": "access_complaint",
            "process": "access-complaint",
            "definition_version": 1,
            "reason_code": "rule",
            "reason": "Access complaints always need an investigation",
            "step": "escalate-complaint",
            "priority": "high",
            "requester": "jdoe",
            "intake_payload": {"system": "payroll", "complaint": "I was locked out"},
            "history": [
                {
                    "step": "check-fields",
                    "kind": "validate",
                    "entered_at": "2026-11-24T09:15:00Z",
                    "completed_at": "2026-11-24T09:15:00Z",
                    "outcome": "valid",
                }
            ],
        }
    )


@pytest.fixture
def case() -> Case:
    opened = Case.open_manually("Payroll lockout", actor="agent-1")
    opened.collect_events()
    return opened
