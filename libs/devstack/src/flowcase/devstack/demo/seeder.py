"""Seeding the demo through the running stack: its real APIs, as the people and systems would.

Upstream systems submit the planned requests to intake; supervisors decide the approvals the
workflow waits for; agents work the cases escalations open (assign, note, message, decide with
rationale and what it relied on, resolve, or leave open). Then the imported history goes in
through `flowcase governance import`. Every step is safe to repeat: submission ids are fixed by
the plan (intake answers the earlier request), a decided approval is not pending any more, and a
worked case is left alone.

Authentication: every caller gets a development token of its role, the actor being its subject:
clients submit; a supervisor of the team the workflow routed the request to decides its
approvals; a lead (supervisor of the case service's triage team and of the routed team) assigns
each case, an agent of that team works it. Only reading which team the workflow routed a
request to needs more: the published definitions do not name teams, so a dispatcher token
(admin) reads the instance.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from flowcase.devstack.demo.workload import PlannedRequest, Verdict
from flowcase.runtime.auth import Role, mint_token
from flowcase.runtime.settings import AuthSettings

TERMINAL = {"completed", "rejected", "resolved_by_case"}
TRIAGE_TEAM = "triage"  # the case service's default FLOWCASE_CASE_TRIAGE_TEAM


class SeedError(RuntimeError):
    """The stack did not answer as the demo needs; the message says which call and why."""


class Credentials:
    """Bearer headers for a caller, minted with the development secret the services share."""

    def __init__(self, settings: AuthSettings) -> None:
        if settings.dev_secret is None:
            raise SeedError(
                "every API needs a bearer token: set FLOWCASE_AUTH_DEV_SECRET to the secret the "
                "services use (the local stack keeps it under .flowcase/auth/)"
            )
        self._settings = settings
        self._minted: dict[tuple[str, tuple[Role | str, ...], tuple[str, ...]], dict[str, str]] = {}

    def headers(
        self, subject: str, *roles: Role | str, teams: Iterable[str] = ()
    ) -> dict[str, str]:
        """Platform roles (`Role`) and business roles (strings, as an approval needs)."""
        key = (subject, roles, tuple(sorted(set(teams))))
        if key not in self._minted:
            token = mint_token(self._settings, subject=subject, roles=roles, teams=key[2])
            self._minted[key] = {"Authorization": f"Bearer {token}"}
        return self._minted[key]


@dataclass
class SeedReport:
    submitted: Counter[str] = field(default_factory=Counter)
    already_there: int = 0
    approved: int = 0
    denied: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    cases_resolved: int = 0
    cases_open: int = 0
    history_events: int = 0

    def summary(self) -> str:
        requests = sum(self.submitted.values())
        parts = [
            f"{requests} requests over {len(self.submitted)} process types"
            + (f" ({self.already_there} already there)" if self.already_there else ""),
            f"{self.approved} approvals, {self.denied} denials",
            f"{self.cases_resolved} cases resolved, {self.cases_open} left open",
        ]
        if self.history_events:
            parts.append(f"{self.history_events} history events imported")
        return "; ".join(parts)


# What the agents write into the cases, per request type (team, outcome code, words).
CASE_WORK: dict[str, dict[str, str]] = {
    "access_complaint": {
        "note": "IdP log shows five MFA pushes from an unknown device before the lockout",
        "decision": "Reset MFA enrolment and restore access",
        "outcome": "access_restored",
    },
    "multi_system_incident": {
        "note": "Shared database connection pool exhausted; both systems depend on it",
        "decision": "Raise the pool limit and roll back the release that leaked connections",
        "outcome": "service_restored",
    },
    "hr_matter": {
        "note": "First interview held; both parties to be heard separately",
        "decision": "Open a formal investigation with an independent advisor",
        "outcome": "resolved_informally",
    },
    "invoice_approval": {
        "note": "Vendor confirmed the amount; the purchase order was never raised",
        "decision": "Pay after a retrospective purchase order is approved",
        "outcome": "paid_with_retro_po",
    },
}
DEFAULT_WORK = {
    "note": "Requester contacted for the missing details",
    "decision": "Proceed by hand with the details the requester gave",
    "outcome": "done_by_hand",
}


class Seeder:
    """Drives planned requests through intake, workflow approvals and case work."""

    def __init__(
        self,
        *,
        intake: httpx.AsyncClient,
        workflow: httpx.AsyncClient,
        case: httpx.AsyncClient,
        credentials: Credentials,
        concurrency: int = 12,
        settle_seconds: float = 60.0,
        poll_seconds: float = 0.25,
    ) -> None:
        self.intake, self.workflow, self.case = intake, workflow, case
        self.credentials = credentials
        self._slots = asyncio.Semaphore(concurrency)
        self._settle = settle_seconds
        self._poll = poll_seconds

    async def seed(
        self,
        plan: list[PlannedRequest],
        report: SeedReport | None = None,
        on_done: Callable[[PlannedRequest, str], None] = lambda _p, _s: None,
    ) -> SeedReport:
        """Submit and follow every planned request to where the demo leaves it."""
        report = report or SeedReport()

        async def one(planned: PlannedRequest) -> None:
            async with self._slots:
                on_done(planned, await self._journey(planned, report))

        await asyncio.gather(*(one(p) for p in plan))
        return report

    async def _journey(self, planned: PlannedRequest, report: SeedReport) -> str:
        request_id = await self._submit(planned, report)
        decided: set[str] = set()
        deadline = time.monotonic() + self._settle
        while time.monotonic() < deadline:
            view = await self._get(self.intake, f"/v1/requests/{request_id}", self._client(planned))
            status = view["status"] if view else "submitted"
            if status in TERMINAL:
                report.outcomes[status] += 1
                return status
            if status == "escalated" and view and view.get("case_id"):
                return await self._work_case(planned, request_id, view["case_id"], report)
            if status == "waiting_for_approval":
                await self._decide(planned, request_id, decided, report)
            await asyncio.sleep(self._poll)
        raise SeedError(
            f"{planned.request_type} request {request_id} did not settle in {self._settle:.0f}s"
            " (is the workflow service consuming?)"
        )

    def _client(self, planned: PlannedRequest) -> dict[str, str]:
        return self.credentials.headers(planned.client, Role.CLIENT)

    async def _instance(self, planned: PlannedRequest, request_id: str) -> dict[str, Any]:
        # The team is known only once the workflow routed the request: a dispatcher reads it.
        dispatcher = self.credentials.headers("demo-dispatcher", Role.ADMIN)
        instance = await self._get(self.workflow, f"/v1/instances/{request_id}", dispatcher)
        if instance is None:
            raise SeedError(f"the workflow shows no instance of request {request_id}")
        return instance

    async def _submit(self, planned: PlannedRequest, report: SeedReport) -> str:
        for _ in range(100):
            answer = await self.intake.post(
                "/v1/requests", json=planned.submission(), headers=self._client(planned)
            )
            if answer.status_code in (429, 503):
                await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
                continue
            if answer.status_code == 409 and "request_id" in answer.json():
                # Seeded before (with another backfill time): the earlier request stands.
                report.already_there += 1
                report.submitted[planned.request_type] += 1
                return str(answer.json()["request_id"])
            _expect(answer, 202, f"submitting {planned.submission_id}")
            report.submitted[planned.request_type] += 1
            return str(answer.json()["request_id"])
        raise SeedError(f"intake kept refusing {planned.submission_id} as busy")

    async def _decide(
        self, planned: PlannedRequest, request_id: str, decided: set[str], report: SeedReport
    ) -> None:
        instance = await self._instance(planned, request_id)
        pending = instance.get("pending_approval")
        if not pending or pending["step"] in decided:
            return  # intake's view trails the workflow's
        team = instance["team"]
        body = {
            "decision": str(planned.verdict),
            "rationale": (
                "Within budget and matches the order"
                if planned.verdict is Verdict.APPROVE
                else "No purchase order matches this invoice"
            ),
            "relied_on": [planned.payload.get("invoice_id") or planned.submission_id],
        }
        answer = await self.workflow.post(
            f"/v1/instances/{request_id}/approvals/{pending['step']}",
            json=body,
            headers=self.credentials.headers(
                f"{pending['role']}.{team}", Role.SUPERVISOR, pending["role"], teams=[team]
            ),
        )
        if answer.status_code == 409:
            return  # decided meanwhile (a repeated seeding): nothing pending at that step
        _expect(answer, 200, f"deciding {pending['step']} of {request_id}")
        decided.add(pending["step"])
        if planned.verdict is Verdict.APPROVE:
            report.approved += 1
        else:
            report.denied += 1

    async def _work_case(
        self, planned: PlannedRequest, request_id: str, case_id: str, report: SeedReport
    ) -> str:
        team = (await self._instance(planned, request_id))["team"]
        lead = self.credentials.headers(f"lead.{team}", Role.SUPERVISOR, teams=[TRIAGE_TEAM, team])
        agent_name = f"agent.{team}.{int(request_id[:4], 16) % 3 + 1}"
        agent = self.credentials.headers(agent_name, Role.AGENT, teams=[team])
        case = await self._get(self.case, f"/v1/cases/{case_id}", lead)
        if case is None:
            raise SeedError(f"case {case_id} of request {request_id} is not there")
        if case.get("assignee"):  # worked by an earlier seeding
            resolved = case["status"] in ("resolved", "closed")
            report.cases_resolved += resolved
            report.cases_open += not resolved
            return "escalated"
        work = CASE_WORK.get(planned.request_type, DEFAULT_WORK)
        version = case["version"]

        async def command(path: str, who: dict[str, str], body: dict[str, Any]) -> str | None:
            nonlocal version
            answer = await self.case.post(
                f"/v1/cases/{case_id}/{path}",
                json={"expected_version": version, **body},
                headers=who,
            )
            _expect(answer, 200, f"{path} on case {case_id}")
            result = answer.json()
            version = result["version"]
            return result.get("entry_id")

        await command("assignments", lead, {"team": team, "assignee": agent_name})
        await command("status-changes", agent, {"to_status": "investigating"})
        note = await command("notes", agent, {"text": work["note"]})
        message = await command(
            "communications",
            agent,
            {
                "direction": "outbound",
                "channel": "email",
                "parties": [f"{planned.requester}@example.com"],
                "summary": "Told the requester what we found and what happens next",
            },
        )
        decision = await command(
            "decisions",
            lead,
            {
                "decision": work["decision"],
                "rationale": f"{work['note']}; the requester agreed",
                "relied_on": [note, message],
            },
        )
        if not planned.resolve_case:
            report.cases_open += 1
            return "escalated"
        await command(
            "resolution",
            agent,
            {
                "outcome_code": work["outcome"],
                "rationale": work["decision"],
                "relied_on": [decision, note],
            },
        )
        report.cases_resolved += 1
        return "resolved_by_case"

    async def _get(self, client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> Any:
        answer = await client.get(path, headers=headers)
        if answer.status_code == 404:
            return None
        _expect(answer, 200, f"GET {path}")
        return answer.json()


def _expect(answer: httpx.Response, status: int, what: str) -> None:
    if answer.status_code != status:
        try:
            detail = answer.json().get("detail") or answer.text
        except ValueError:
            detail = answer.text
        raise SeedError(f"{what}: {answer.status_code} from {answer.request.url}: {detail}")


def import_history(csv_file: Path, database_url: str) -> int:
    """Load the history with `flowcase governance import` (the command a team runs for its own
    log) into governance's database; the number of events it imported."""
    command = [
        sys.executable,
        "-c",
        "from flowcase.cli.main import main; main()",
        "governance",
        "import",
        str(csv_file),
        "--fail-fast",
        "--database-url",
        database_url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    imported = re.search(r"imported (\d+) new events .*\((\d+) already present", done.stdout)
    if done.returncode != 0 or imported is None:
        reason = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SeedError(f"the history import failed ({done.returncode}): {' / '.join(reason)}")
    # The history's events, whether this seeding or an earlier one stored them.
    return int(imported.group(1)) + int(imported.group(2))
