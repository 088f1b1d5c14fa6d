"""The demo seeder against the four services in this process (their own topics and databases)
and the local stack's webhook sink: a scaled-down seeding through the real APIs, then what
governance shows. The seeding is repeated to show nothing doubles."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from flowcase.case.composition import build_service as build_case
from flowcase.devstack.consumer_lag import consumer_lag
from flowcase.devstack.database_copies import own_databases
from flowcase.devstack.dedicated import SERVICE_NAMES
from flowcase.devstack.demo.cli import seed_through
from flowcase.devstack.demo.seeder import Credentials, Seeder
from flowcase.devstack.endpoints import Endpoints
from flowcase.devstack.in_process import eventually, served_webhook_sink
from flowcase.devstack.topic_copies import own_topics
from flowcase.governance.composition import build_service as build_governance
from flowcase.intake.composition import build_service as build_intake
from flowcase.intake.settings import IntakeSettings
from flowcase.runtime import HttpSettings, workers_running
from flowcase.runtime.auth import Role, mint_token
from flowcase.runtime.settings import AuthSettings
from flowcase.workflow.composition import build_service as build_workflow
from flowcase.workflow.settings import WorkflowSettings


async def test_a_scaled_down_seeding_shows_the_exception_rate_and_the_imported_drift(
    stack: Endpoints, tmp_path: Path
) -> None:
    os.environ.setdefault("FLOWCASE_AUTH_DEV_SECRET", secrets.token_urlsafe(32))
    auth = AuthSettings()
    ops = {"Authorization": f"Bearer {mint_token(auth, subject='ops', roles=[Role.ADMIN])}"}
    async with (
        own_topics(stack) as kafka,
        own_databases(stack, SERVICE_NAMES, prefix="test_demo") as db,
        served_webhook_sink() as sink,
        contextlib.AsyncExitStack() as running,
    ):
        http = HttpSettings()
        workflow_settings = WorkflowSettings(
            connector_gateway_url=f"{sink}/hooks", timer_poll_seconds=0.2
        )
        workflow = await build_workflow(kafka, db["workflow"], workflow_settings, http)
        await running.enter_async_context(workflow.running())
        case = await build_case(kafka=kafka, database=db["case"], http=http)
        await running.enter_async_context(case.running())
        governance = await build_governance(kafka, db["governance"], http)
        running.push_async_callback(governance.close)
        await running.enter_async_context(workers_running(governance.workers))
        intake = await build_intake(
            kafka=kafka, database=db["intake"], http=http, intake=IntakeSettings(), auth=auth
        )
        await running.enter_async_context(intake.running())
        apps = {"intake": intake.app, "workflow": workflow.app, "case": case.app}
        apps["governance"] = governance.app
        clients = {
            name: await running.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
            )
            for name, app in apps.items()
        }
        for client in clients.values():
            await eventually(
                functools.partial(client.get, "/readyz"), lambda r: r.status_code == 200
            )

        seeder = Seeder(
            intake=clients["intake"],
            workflow=clients["workflow"],
            case=clients["case"],
            credentials=Credentials(auth),
            settle_seconds=30,
        )

        async def seed() -> Any:
            return await seed_through(
                seeder,
                governance_database_url=db["governance"].url,
                folder=tmp_path,
                now=datetime.now(UTC),
                scale=0.1,
                quiet=True,
            )

        report = await seed()
        assert report.submitted["invoice_approval"] == 30
        assert report.denied == 9
        assert report.cases_resolved > 0
        assert report.cases_open > 0  # HR matters stay open, and a share of the others
        assert report.history_events > 2000

        governance_api = clients["governance"]

        async def alerts() -> dict[str, Any]:
            return (await governance_api.get("/v1/alerts", headers=ops)).json()

        # Every signal the article names shows on a newcomer's first look.
        signals = {
            ("exception_rate", "invoice_approval"),
            ("drift", "hr_matter"),
            ("bottleneck", "hr_matter"),
            ("audit_gap", "hr_matter"),
        }

        def both(found: dict[str, Any]) -> bool:
            kinds = {(a["kind"], a["process_type"]) for a in found.get("alerts", [])}
            return signals <= kinds

        found = await eventually(alerts, both)
        rate = next(
            a
            for a in found["alerts"]
            if (a["kind"], a["process_type"]) == ("exception_rate", "invoice_approval")
        )
        assert rate["figures"]["exception_rate"] > 0.2

        async def processes() -> dict[str, Any]:
            answer = await governance_api.get("/v1/processes", headers=ops)
            return {row["process_type"]: row for row in answer.json()["processes"]}

        rows = await processes()
        assert rows["invoice_approval"]["recommendation"]["approach"] == "layered"
        assert rows["hr_matter"]["recommendation"]["approach"] == "case"
        hr = rows["hr_matter"]["totals"]
        assert hr["overrides"] > 0
        assert hr["sla_breach_rate"] > 0.2
        volumes = {t: row["totals"]["volume"] for t, row in rows.items()}

        again = await seed()  # a second seeding: the same requests, the same history
        assert again.already_there + sum(again.submitted.values()) > 0
        assert again.approved + again.denied == 0
        # Once the groups whose work reaches governance have read all there is, governance has
        # seen what the second seeding caused: its figures must not have moved. (Intake's
        # status keeps its position in its own database, not as a group's commits.)
        await eventually(
            functools.partial(consumer_lag, kafka),
            lambda lag: lag["workflow"] == lag["case"] == lag["governance"] == 0,
            timeout=120,
        )
        assert {t: row["totals"]["volume"] for t, row in (await processes()).items()} == volumes
