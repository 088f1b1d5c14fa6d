"""The request mix: which kind each request is, deterministic for a seed.

Routine requests run end to end without a person; approvals wait for one approval, which the
driver gives as soon as it is requested; escalations open a case. Each kind's submissions are
built from the demo workload's realistic payloads, held to the branch that gives that outcome.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flowcase.devstack.demo.workload import PAYLOADS, PEOPLE, STANDARD_SOFTWARE


class Kind(StrEnum):
    ROUTINE = "routine"
    APPROVAL = "approval"
    ESCALATION = "escalation"


@dataclass(frozen=True)
class Mix:
    """Shares of each kind (any positive weights; they are normalised)."""

    routine: float = 80.0
    approval: float = 15.0
    escalation: float = 5.0

    def __post_init__(self) -> None:
        weights = (self.routine, self.approval, self.escalation)
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"mix weights must be non-negative and not all zero: {self}")

    @classmethod
    def parse(cls, text: str) -> Mix:
        """`routine=80,approval=15,escalation=5` (a kind left out weighs 0)."""
        weights: dict[str, float] = {}
        for part in text.split(","):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in Kind.__members__.values() or not value:
                raise ValueError(f"a mix part is kind=weight with a kind of {list(Kind)}: {part!r}")
            weights[name] = float(value)
        return cls(**{k.value: weights.get(k.value, 0.0) for k in Kind})

    def shares(self) -> dict[Kind, float]:
        total = self.routine + self.approval + self.escalation
        return {
            Kind.ROUTINE: self.routine / total,
            Kind.APPROVAL: self.approval / total,
            Kind.ESCALATION: self.escalation / total,
        }


@dataclass(frozen=True)
class PlannedSubmission:
    kind: Kind
    submission_id: str
    body: dict[str, Any]  # the body of `POST /v1/requests`, or the raw topic's JSON

    @property
    def request_type(self) -> str:
        return str(self.body["request_type"])


# Approvals with exactly one approval step: every invoice needs finance's (amounts >= 1000);
# a purchase order between 5,000 and 25,000 needs only its department head's.
_ONE_APPROVAL_ORDER = (5_000.0, 24_999.0)


def _routine(rng: random.Random, requester: str) -> tuple[str, dict[str, Any]]:
    if rng.random() < 0.5:
        return "password_reset", PAYLOADS["password_reset"](rng, requester)
    return "software_access", {
        "software": rng.choice(STANDARD_SOFTWARE),
        "justification": "Joining a project",
    }


def _approval(rng: random.Random, requester: str) -> tuple[str, dict[str, Any]]:
    if rng.random() < 0.5:
        return "invoice_approval", PAYLOADS["invoice_approval"](rng, requester)
    order = PAYLOADS["purchase_order"](rng, requester)
    order["amount"] = round(rng.uniform(*_ONE_APPROVAL_ORDER), 2)
    return "purchase_order", order


def _escalation(rng: random.Random, requester: str) -> tuple[str, dict[str, Any]]:
    if rng.random() < 0.5:
        return "access_complaint", PAYLOADS["access_complaint"](rng, requester)
    # Non-standard software over 500 a month matches no branch of the process: a case.
    return "software_access", {
        "software": "enterprise-analytics-suite",
        "justification": "Needed for the quarterly reporting work",
        "monthly_cost": 1200,
    }


_BUILDERS = {Kind.ROUTINE: _routine, Kind.APPROVAL: _approval, Kind.ESCALATION: _escalation}


def plan_submissions(mix: Mix, *, seed: int, prefix: str) -> Iterator[PlannedSubmission]:
    """An endless, reproducible sequence of submissions; ids are `{prefix}-{n}`."""
    rng = random.Random(seed)
    kinds = list(mix.shares())
    weights = list(mix.shares().values())
    n = 0
    while True:
        kind = rng.choices(kinds, weights)[0]
        requester = rng.choice(PEOPLE)
        request_type, payload = _BUILDERS[kind](rng, requester)
        submission_id = f"{prefix}-{n}"
        yield PlannedSubmission(
            kind,
            submission_id,
            {
                "submission_id": submission_id,
                "request_type": request_type,
                "requester": requester,
                "priority": "normal",
                "payload": payload,
            },
        )
        n += 1
