"""A migration through the running service, as an administrator runs it: invoices waiting for
their approval on v1 move to a v2 whose approval step is renamed. A dry run changes nothing; a
kill -9 of the workflow in the middle of the run leaves every instance on one version, and the
run started again moves the rest; the approvals then granted complete them on v2."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from flowcase.devstack.dedicated import service_alone
from flowcase.devstack.dev_tokens import Tokens
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime.auth import Role
from flowcase.workflow.cli import app
from flowcase.workflow.definition_files import shipped_folder

INSTANCES = 240
FIRST_PAGE = 80
INVOICE = {"vendor": "Acme", "amount": 12_000.0, "currency": "EUR"}  # the director's to approve
# The README's example plan.
PLAN = Path(__file__).parents[1] / "examples" / "invoice_migration_plan.yaml"


def v2_of(v1: str) -> str:
    return v1.replace("version: 1", "version: 2", 1).replace(
        "name: finance-approval", "name: controller-approval"
    )


@pytest.fixture
def workflow(
    module_kafka: KafkaSettings,
    module_database: DatabaseSettings,
    far_side: Any,
    tmp_path: Path,
) -> Any:
    """The workflow as its own process (one a test can kill -9), on the module's topics and
    database, its definitions in a folder of the test's own."""
    folder = tmp_path / "processes"
    shutil.copytree(shipped_folder(), folder)
    instance = service_alone(
        "workflow",
        tmp_path / "home",
        kafka=module_kafka,
        database_url=module_database.url,
        env={
            "FLOWCASE_WORKFLOW_DEFINITIONS_FOLDER": str(folder),
            "FLOWCASE_WORKFLOW_CONNECTOR_GATEWAY_URL": f"{far_side.url}/hooks",
        },
    )
    instance.folder = folder  # type: ignore[attr-defined]
    try:
        yield instance
    finally:
        instance.kill()


async def test_waiting_approvals_move_to_a_renamed_step_through_a_crash(
    workflow: Any,
    module_database: DatabaseSettings,
    tokens: Tokens,
    intake: Any,
    workflow_events: Any,
) -> None:
    await asyncio.to_thread(workflow.start)
    requests = [
        await intake.submit("invoice_approval", {**INVOICE, "invoice_id": f"INV-{n}"})
        for n in range(INSTANCES)
    ]
    for request_id in requests:
        await workflow_events.wait_for(request_id, "workflow.ApprovalRequested", timeout=120)

    # Version 2 is published by adding its file and restarting, as a deployment does.
    v1 = (workflow.folder / "invoice_approval.yaml").read_text()
    (workflow.folder / "invoice_approval_v2.yaml").write_text(v2_of(v1))
    workflow.stop()
    await asyncio.to_thread(workflow.start)
    asked = {
        "request_type": "invoice_approval",
        "from_version": 1,
        "to_version": 2,
        "plan": {"steps": {"finance-approval": "controller-approval"}},
        "reason": "the controller approves from December",
    }
    pool = await asyncpg.create_pool(module_database.url, min_size=1, max_size=2)
    admin = httpx.AsyncClient(base_url=workflow.url, headers=tokens.admin(), timeout=120)
    try:
        stored_before = await _stored_events(pool)
        # A supervisor may not migrate: admins only.
        refused = await admin.post(
            "/v1/migrations",
            json={**asked, "dry_run": True},
            headers=tokens.headers(Role.SUPERVISOR, teams=["treasury"]),
        )
        assert refused.status_code == 403

        # The dry run: every instance can move, and nothing is stored.
        rehearsal = (await admin.post("/v1/migrations", json={**asked, "dry_run": True})).json()
        assert rehearsal["waiting"] == INSTANCES
        assert {m["outcome"] for m in rehearsal["moves"]} == {"can_move"}
        assert {m["now"] for m in rehearsal["moves"]} == {"waits at controller-approval"}
        assert {UUID(m["request_id"]) for m in rehearsal["moves"]} == set(requests)
        assert await _stored_events(pool) == stored_before
        assert await _on_version(pool, 2) == 0

        # The run: a first page, then the workflow killed while the second is under way.
        first = await admin.post("/v1/migrations", json={**asked, "limit": FIRST_PAGE})
        assert first.status_code == 200, first.text
        page = first.json()
        assert [m["outcome"] for m in page["moves"]] == ["moved"] * FIRST_PAGE
        rest = asyncio.create_task(
            admin.post(
                "/v1/migrations",
                json={**asked, "migration_id": page["migration_id"], "after": page["next"]},
            )
        )
        await _until(lambda: _stored_migrations(pool), lambda n: n > FIRST_PAGE, rest)
        workflow.kill()
        with pytest.raises(httpx.HTTPError):
            await rest
        moved_at_kill = await _stored_migrations(pool)
        assert FIRST_PAGE < moved_at_kill < INSTANCES, "the kill did not land mid-run"
    finally:
        await admin.aclose()

    # Started again, the same command finishes the rest, and says what it did.
    await asyncio.to_thread(workflow.start)
    cli = CliRunner()
    ran = await asyncio.to_thread(
        cli.invoke,
        app,
        [
            "migrate",
            "invoice_approval",
            "--from=1",
            "--to=2",
            f"--plan={PLAN}",
            "--reason=the controller approves from December",
            f"--workflow={workflow.url}",
        ],
        env={"FLOWCASE_TOKEN": tokens.token(Role.ADMIN, subject="ops-admin@example.com")},
    )
    assert ran.exit_code == 0, ran.output
    moved_after = INSTANCES - moved_at_kill
    assert f"{moved_after} moved to v2" in ran.output

    try:
        # Every instance moved once: one InstanceMigrated each in its history, and on the topic
        # one event id (the relay killed between publishing and recording its position publishes
        # the same event again, under the same id, which consumers recognise).
        assert await _stored_migrations(pool) == INSTANCES
        for request_id in requests:
            migrated = await workflow_events.wait_for(request_id, "workflow.InstanceMigrated")
            assert (migrated.step, migrated.to_step) == ("finance-approval", "controller-approval")
            published = _of_type(workflow_events, request_id, "workflow.InstanceMigrated")
            assert len({e.event_id for e in published}) == 1
            assert {e.actor for e in published} <= {"test-admin", "ops-admin@example.com"}
        # The approval's timer moved to the new step with its due time carried.
        timers = await pool.fetch("SELECT timer_id, fire_at FROM workflow_timers")
        assert {t["timer_id"] for t in timers} >= {"controller-approval/approval-timeout"}
        assert "finance-approval/approval-timeout" not in {t["timer_id"] for t in timers}
    finally:
        await pool.close()

    # The approvals granted now complete them on v2.
    director = tokens.headers(
        Role.SUPERVISOR, "finance-director", teams=["treasury"], subject="dora@example.com"
    )
    async with httpx.AsyncClient(base_url=workflow.url, headers=director, timeout=60) as api:
        for request_id in requests:
            answer = await api.post(
                f"/v1/instances/{request_id}/approvals/controller-approval",
                json={"decision": "approved", "rationale": "checked against the PO"},
            )
            assert answer.status_code == 200, answer.text
        for request_id in requests:
            assert str((await workflow_events.outcome(request_id, timeout=60)).outcome) == (
                "completed"
            )
            completed = _of_type(workflow_events, request_id, "workflow.InstanceCompleted")
            assert len({e.event_id for e in completed}) == 1
        view = (await api.get(f"/v1/instances/{requests[0]}")).json()
        assert view["definition_version"] == 2
        assert [(r["step"], r["outcome"]) for r in view["history"]][-4:] == [
            ("finance-approval", "migrated"),
            ("controller-approval", "approved"),
            ("schedule-payment", "succeeded"),
            ("tell-requester", "sent"),
        ]
        migrated_event = next(e for e in view["events"] if e["type"] == "InstanceMigrated")
        assert migrated_event["actor"] in ("test-admin", "ops-admin@example.com")


def _of_type(workflow_events: Any, request_id: UUID, event_type: str) -> list[Any]:
    return [e for e in workflow_events.of(request_id) if e.event_type == event_type]


async def _stored_events(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM workflowapplication_events")
    return count


async def _stored_migrations(pool: asyncpg.Pool) -> int:
    """Instances whose stored history holds a migration: the store, not a projection of it."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM workflowapplication_events WHERE position('InstanceMigrated' in "
        "convert_from(state, 'UTF8')) > 0"
    )
    return count


async def _on_version(pool: asyncpg.Pool, version: int) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM workflow_instances WHERE definition_version = $1", version
    )
    return count


async def _until(read: Any, holds: Any, running: asyncio.Task[Any]) -> None:
    """Wait until `holds(await read())`, while `running` has not finished (a generous bound)."""
    deadline = time.monotonic() + 60
    while not holds(await read()):
        assert not running.done(), "the run ended before the kill"
        assert time.monotonic() < deadline, "no progress"
        await asyncio.sleep(0.01)
