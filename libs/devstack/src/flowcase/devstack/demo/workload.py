"""The demo's live requests, planned without I/O: deterministic for a seed and a clock.

Each shipped process type gets requests with payloads valid against its published schema and,
where people act, what they will do: approve or deny a pending approval, and whether a case the
request escalates into is resolved or left open. The mix is chosen so the governance advice
differs per type: routine types stay on the path (`workflow`), about 30% of invoices are denied
(an exception rate over 20%: `layered`), incidents escalate about half the time, and complaints
and HR matters escalate nearly always (`case`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

# Requests per type at scale 1: a few hundred in all, every type over the advisor's minimum of
# 30 except hr_matter, whose count matches one day of the imported history (see drift_history).
COUNTS: dict[str, int] = {
    "password_reset": 60,
    "software_access": 40,
    "employee_onboarding": 30,
    "invoice_approval": 60,
    "purchase_order": 40,
    "access_complaint": 30,
    "hr_matter": 10,
    "multi_system_incident": 30,
}

# The upstream systems that submit each type (each is a client with its own rate limit).
CLIENTS: dict[str, str] = {
    "password_reset": "service-portal",
    "software_access": "service-portal",
    "employee_onboarding": "hris",
    "invoice_approval": "erp-inbox",
    "purchase_order": "procurement-portal",
    "access_complaint": "service-portal",
    "hr_matter": "hr-portal",
    "multi_system_incident": "monitoring",
}

# How far back a type's submissions may be backdated (`submitted_at`), kept well inside its
# shortest SLA or approval timeout: the workflow runs a request from its submission time, so an
# older one would breach at once. Types absent here are submitted now.
BACKFILL: dict[str, timedelta] = {
    "invoice_approval": timedelta(hours=36),
    "purchase_order": timedelta(hours=36),
    "employee_onboarding": timedelta(hours=30),
    "software_access": timedelta(hours=2),
}

DENIED_SHARE = 0.3  # of invoices that need an approval
OPEN_SHARE = 0.2  # of escalated cases left open (all HR matters: see drift_history)


class Verdict(StrEnum):
    APPROVE = "approved"
    DENY = "denied"


@dataclass(frozen=True)
class PlannedRequest:
    submission_id: str
    request_type: str
    client: str
    requester: str
    priority: str
    payload: dict[str, Any]
    submitted_at: datetime | None  # None: intake stamps the time of receipt
    verdict: Verdict  # for every approval the request waits at
    resolve_case: bool  # if it escalates: resolve the case, or leave it open

    def submission(self) -> dict[str, Any]:
        """The body of `POST /v1/requests`."""
        body = {
            "request_type": self.request_type,
            "requester": self.requester,
            "priority": self.priority,
            "submission_id": self.submission_id,
            "payload": self.payload,
        }
        if self.submitted_at is not None:
            body["submitted_at"] = self.submitted_at.isoformat()
        return body


PEOPLE = [
    "amara.okafor",
    "ben.lindqvist",
    "chen.wei",
    "dana.kowalski",
    "elif.demir",
    "farah.haddad",
    "gustavo.reis",
    "hana.sato",
    "ivan.petrov",
    "julia.meyer",
    "kofi.mensah",
    "lena.novak",
    "mateo.garcia",
    "nadia.rahman",
    "oscar.nilsson",
    "priya.iyer",
    "quentin.moreau",
    "rosa.alvarez",
    "sven.berg",
    "tariq.aziz",
]
VENDORS = [
    "Acme Office Supply",
    "Northwind Traders",
    "Globex Logistics",
    "Initech Software",
    "Umbrella Facilities",
    "Stark Components",
    "Wayne Catering",
    "Hooli Cloud",
]
STANDARD_SOFTWARE = ["slack", "zoom", "figma", "jira", "github", "notion"]
OTHER_SOFTWARE = ["tableau", "adobe-acrobat", "miro", "lucidchart", "datadog", "postman"]
DEPARTMENTS = ["engineering", "finance", "sales", "marketing", "operations", "it"]
SYSTEMS = ["payroll", "erp", "crm", "vpn", "okta", "email", "data-warehouse", "billing"]


def _email(name: str) -> str:
    return f"{name}@example.com"


def _password_reset(rng: random.Random, requester: str) -> dict[str, Any]:
    payload = {
        "account": requester,
        "system": rng.choice(["okta", "google-workspace", "github", "jira", "slack"]),
    }
    if rng.random() < 0.5:
        payload["delivery_email"] = _email(requester)
    return payload


def _software_access(rng: random.Random, requester: str) -> dict[str, Any]:
    draw = rng.random()
    if draw < 0.85:
        return {"software": rng.choice(STANDARD_SOFTWARE), "justification": "Joining a project"}
    # Non-standard: cheap ones go to the line manager; an expensive one matches no branch.
    cost = rng.choice([19, 45, 90, 240]) if draw < 0.97 else 1200
    return {
        "software": rng.choice(OTHER_SOFTWARE),
        "justification": "Needed for the quarterly reporting work",
        "monthly_cost": cost,
    }


def _employee_onboarding(rng: random.Random, requester: str) -> dict[str, Any]:
    first = rng.choice(["Aiko", "Bram", "Carla", "Dev", "Eva", "Finn", "Gita", "Hugo", "Iris"])
    last = rng.choice(["Jensen", "Kumar", "Lopez", "Muller", "Nakamura", "Olsen", "Park"])
    start = datetime(2026, 12, 1) + timedelta(days=rng.randrange(0, 45))
    return {
        "employee_name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}@example.com",
        "manager_email": _email(requester),
        "department": rng.choice(DEPARTMENTS),
        "start_date": start.strftime("%Y-%m-%d"),
    }


def _invoice_approval(rng: random.Random, requester: str) -> dict[str, Any]:
    # Every demo invoice needs a finance approval (>= 1000); a few go to the director or CFO.
    amount = rng.choice(
        [rng.uniform(1000, 9999)] * 8
        + [rng.uniform(10000, 49999)] * 3
        + [rng.uniform(50000, 90000)]
    )
    return {
        "invoice_id": f"INV-{rng.randrange(10000, 99999)}",
        "vendor": rng.choice(VENDORS),
        "amount": round(amount, 2),
        "currency": rng.choice(["EUR", "EUR", "USD", "GBP"]),
        "cost_center": f"CC-{rng.randrange(100, 999)}",
    }


def _purchase_order(rng: random.Random, requester: str) -> dict[str, Any]:
    amount = rng.choice(
        [rng.uniform(500, 4999), rng.uniform(5000, 24999), rng.uniform(25000, 60000)]
    )
    lines = [
        {"sku": f"SKU-{rng.randrange(1000, 9999)}", "quantity": rng.randrange(1, 50)}
        for _ in range(rng.randrange(1, 4))
    ]
    return {
        "supplier": rng.choice(VENDORS),
        "department": rng.choice(DEPARTMENTS),
        "amount": round(amount, 2),
        "lines": lines,
    }


def _access_complaint(rng: random.Random, requester: str) -> dict[str, Any]:
    system = rng.choice(SYSTEMS)
    complaint = rng.choice(
        [
            f"I was locked out of {system} after an MFA prompt I did not start",
            f"A former contractor still appears to have access to {system}",
            f"My {system} permissions were removed without notice",
        ]
    )
    return {"system": system, "complaint": complaint, "affected_account": requester}


def _hr_matter(rng: random.Random, requester: str) -> dict[str, Any]:
    category = rng.choice(
        [
            "policy-question",
            "grievance",
            "grievance",
            "harassment",
            "leave-dispute",
            "discrimination",
            "leave-dispute",
            "grievance",
        ]
    )
    return {
        "category": category,
        "description": f"Raised by {requester}: {category.replace('-', ' ')}",
        "confidential": category in ("harassment", "discrimination"),
    }


def _multi_system_incident(rng: random.Random, requester: str) -> dict[str, Any]:
    # About half escalate: several systems, or a high or critical impact.
    several = rng.random() < 0.35
    systems = rng.sample(SYSTEMS, rng.randrange(2, 4) if several else 1)
    impact = rng.choice(["low", "medium", "medium", "high"] if not several else ["low", "medium"])
    return {
        "systems": systems,
        "impact": impact,
        "summary": f"Errors and timeouts on {', '.join(systems)}",
    }


PAYLOADS: dict[str, Callable[[random.Random, str], dict[str, Any]]] = {
    "password_reset": _password_reset,
    "software_access": _software_access,
    "employee_onboarding": _employee_onboarding,
    "invoice_approval": _invoice_approval,
    "purchase_order": _purchase_order,
    "access_complaint": _access_complaint,
    "hr_matter": _hr_matter,
    "multi_system_incident": _multi_system_incident,
}

PRIORITIES: dict[str, list[str]] = {
    "access_complaint": ["high"],
    "multi_system_incident": ["high", "urgent"],
}


def scaled_counts(scale: float = 1.0, minimum: dict[str, int] | None = None) -> dict[str, int]:
    """`COUNTS` times `scale`, at least 1 per type (or the given minimum)."""
    minimum = minimum or {}
    return {t: max(minimum.get(t, 1), round(n * scale)) for t, n in COUNTS.items()}


def plan_workload(
    now: datetime, *, seed: int = 7, counts: dict[str, int] | None = None
) -> list[PlannedRequest]:
    """The requests to submit, oldest first; the same seed, clock and counts give the same plan."""
    rng = random.Random(seed)
    planned = []
    for request_type, count in (counts or COUNTS).items():
        # An exact share, not a coin per invoice: a small run must still cross the 20% line.
        denied = (
            set(rng.sample(range(count), round(count * DENIED_SHARE)))
            if request_type == "invoice_approval"
            else set()
        )
        for n in range(count):
            requester = rng.choice(PEOPLE)
            window = BACKFILL.get(request_type)
            age = timedelta(seconds=rng.uniform(0, window.total_seconds())) if window else None
            planned.append(
                PlannedRequest(
                    submission_id=f"demo-{seed}-{request_type}-{n:04d}",
                    request_type=request_type,
                    client=CLIENTS[request_type],
                    requester=requester,
                    priority=rng.choice(PRIORITIES.get(request_type, ["low", "normal", "high"])),
                    payload=PAYLOADS[request_type](rng, requester),
                    submitted_at=now - age if age is not None else None,
                    verdict=Verdict.DENY if n in denied else Verdict.APPROVE,
                    resolve_case=request_type != "hr_matter" and rng.random() >= OPEN_SHARE,
                )
            )
    return sorted(planned, key=lambda p: (p.submitted_at or now, p.submission_id))
