"""`flowcase governance import` and `export` against the real database, read back through the
service's API: a history with a known drift is flagged and one without is not, a second import
changes nothing, invalid rows are reported (or stop everything with --fail-fast), and the
exported OCEL 2.0 log loads in PM4Py with governance's counts of requests and cases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner, Result

from flowcase.devstack.dev_tokens import Tokens
from flowcase.devstack.endpoints import Endpoints
from flowcase.events import Envelope, encode
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.governance.cli import app
from flowcase.governance.composition import build_service
from flowcase.runtime.auth import Role
from flowcase.runtime.settings import AuthSettings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "history.csv"
# The example's week (and the workload's): Monday 2026-11-23 to the next Monday.
WEEK = "?since=2026-11-23T00:00:00Z&until=2026-11-30T00:00:00Z"
NOW = datetime(2026, 11, 30, tzinfo=UTC)
TABLES = ("requests", "step_executions", "overrides", "audit_records", "cases")


async def governance(*args: str) -> Result:
    """The `flowcase governance` command, in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


@pytest.fixture
async def api(
    stack: Endpoints, auth_settings: AuthSettings, tokens: Tokens
) -> AsyncIterator[Callable[[str], Awaitable[httpx.AsyncClient]]]:
    """`await api(database_url)`: the service's HTTP API over that database (no consumer), as
    an ops leader."""
    services = []
    clients = []

    async def open_api(database_url: str) -> httpx.AsyncClient:
        service = await build_service(
            KafkaSettings(bootstrap=stack.kafka_bootstrap),
            DatabaseSettings(url=database_url),
            auth=auth_settings,
            clock=lambda: NOW,
        )
        services.append(service)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.app),
            base_url="http://governance",
            headers=tokens.headers(Role.OPS_LEADER),
        )
        clients.append(client)
        return client

    yield open_api
    for client in clients:
        await client.aclose()
    for service in services:
        await service.close()


async def rows(database_url: str) -> dict[str, list[Any]]:
    connection = await asyncpg.connect(database_url)
    try:
        return {
            table: [
                tuple(r) for r in await connection.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")
            ]
            for table in TABLES
        }
    finally:
        await connection.close()


async def test_an_imported_drift_is_flagged_a_steady_process_is_not_and_reimport_changes_nothing(
    database_url: str, api: Callable[[str], Awaitable[httpx.AsyncClient]]
) -> None:
    result = await governance("import", str(EXAMPLE), "--database-url", database_url)
    assert result.exit_code == 0, result.output
    lines = len(EXAMPLE.read_text().splitlines()) - 1
    assert f"imported {lines} new events from {EXAMPLE} (0 already present, 0 invalid" in (
        result.output
    )
    http = await api(database_url)

    alerts = (await http.get(f"/v1/alerts{WEEK}")).json()
    assert [a["process_type"] for a in alerts["alerts"] if a["kind"] == "drift"] == ["claims"]
    processes = {
        p["process_type"]: p for p in (await http.get(f"/v1/processes{WEEK}")).json()["processes"]
    }
    assert processes["claims"]["drift"]["flagged"] is True
    assert processes["refunds"]["drift"]["flagged"] is False
    assert processes["claims"]["totals"]["volume"] == 21

    before = await rows(database_url)
    answers = {
        path: (await http.get(f"{path}{WEEK}")).json()
        for path in ("/v1/processes", "/v1/processes/claims", "/v1/processes/refunds", "/v1/alerts")
    }
    again = await governance(
        "import", str(EXAMPLE), "--format", "csv", "--database-url", database_url
    )
    assert again.exit_code == 0, again.output
    assert f"imported 0 new events from {EXAMPLE} ({lines} already present" in again.output
    assert await rows(database_url) == before
    for path, answer in answers.items():
        assert (await http.get(f"{path}{WEEK}")).json() == answer


async def test_invalid_rows_are_reported_by_line_and_fail_fast_imports_nothing(
    database_url: str, tmp_path: Path
) -> None:
    lines = EXAMPLE.read_text().splitlines()
    broken = [*lines[:3], lines[3].replace("2026-11-23T", "2026-13-23T", 1), *lines[4:20]]
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(broken) + "\n")

    strict = await governance("import", str(path), "--fail-fast", "--database-url", database_url)
    assert strict.exit_code == 1
    assert f"{path}: line 4: timestamp: not an ISO 8601 time" in strict.output
    assert "nothing imported" in strict.output
    connection = await asyncpg.connect(database_url)
    try:
        # Not even the tables: --fail-fast checks the file before it opens the database.
        assert await connection.fetchval("SELECT to_regclass('requests')") is None
    finally:
        await connection.close()

    lenient = await governance("import", str(path), "--database-url", database_url)
    assert lenient.exit_code == 1
    assert f"{path}: line 4: timestamp" in lenient.output
    assert f"imported {len(broken) - 2} new events" in lenient.output
    assert "1 invalid records skipped, listed above" in lenient.output


async def test_a_file_that_is_not_utf8_is_refused_whole_before_anything_is_stored(
    database_url: str, tmp_path: Path
) -> None:
    lines = EXAMPLE.read_text().splitlines()
    # A history saved as Latin-1: an accented step name on its 15th line, plain ASCII before it.
    assert "review" in lines[14]
    text = "\n".join([*lines[:14], lines[14].replace("review", "révision", 1), *lines[15:]])
    path = tmp_path / "latin1.csv"
    path.write_bytes(text.encode("latin-1"))

    for fail_fast in ([], ["--fail-fast"]):
        result = await governance("import", str(path), *fail_fast, "--database-url", database_url)

        assert result.exit_code == 1, result.output
        assert f"{path}: line 15: not UTF-8 (byte 0xe9)" in result.output
        assert "Traceback" not in result.output
    counted = await rows(database_url)
    assert all(found == [] for found in counted.values())


async def test_a_file_without_events_says_so_and_fails(database_url: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    header_only = tmp_path / "header.csv"
    header_only.write_text("timestamp,activity\n")

    nothing = await governance("import", str(empty), "--database-url", database_url)
    header = await governance("import", str(header_only), "--database-url", database_url)

    assert nothing.exit_code == header.exit_code == 1
    assert f"{empty} holds no events: nothing imported" in nothing.output
    assert f"{header_only}: line 2: no rows after the header" in header.output


async def test_the_exported_ocel2_log_loads_in_pm4py_with_governances_counts_and_imports_back(
    database_url: str,
    another_database_url: str,
    api: Callable[[str], Awaitable[httpx.AsyncClient]],
    make_workload: Callable[..., list[Envelope]],
    tmp_path: Path,
) -> None:
    pm4py = pytest.importorskip("pm4py")
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"".join(encode(e) + b"\n" for e in make_workload()))
    imported = await governance("import", str(history), "--database-url", database_url)
    assert imported.exit_code == 0, imported.output

    exported = tmp_path / "governance.json"
    result = await governance(
        "export", "--format", "ocel2", "--output", str(exported), "--database-url", database_url
    )
    assert result.exit_code == 0, result.output
    log = await asyncio.to_thread(pm4py.read_ocel2_json, str(exported))
    objects = log.objects["ocel:type"].value_counts().to_dict()

    http = await api(database_url)
    processes = (await http.get(f"/v1/processes{WEEK}")).json()["processes"]
    assert objects == {
        "request": sum(p["totals"]["volume"] for p in processes),
        "case": sum(p["totals"]["cases_opened"] for p in processes),
    }
    assert set(log.events["ocel:activity"]) >= {"request_submitted", "case_resolved"}

    # The export imported into an empty database gives the same figures.
    back = await governance("import", str(exported), "--database-url", another_database_url)
    assert back.exit_code == 0, back.output
    http_back = await api(another_database_url)
    for path in ("/v1/processes", "/v1/alerts", "/v1/processes/access-request"):
        assert (await http_back.get(f"{path}{WEEK}")).json() == (
            await http.get(f"{path}{WEEK}")
        ).json()
