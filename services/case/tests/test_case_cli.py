"""`flowcase case verify` finds the case service's database, and never calls nothing verified a
success: the tamper check's all-clear must mean that chains were read and found intact."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from flowcase.case.application import CaseApplication
from flowcase.case.cli import app as cli
from flowcase.events.settings import DatabaseSettings
from flowcase.eventstore import postgres_env


async def _verify(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, ["verify", *args], env=env)


async def _tables(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await conn.close()


def test_a_tool_uses_the_local_stacks_database_of_its_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FLOWCASE_DATABASE_URL", raising=False)
    monkeypatch.setenv("FLOWCASE_POSTGRES_PORT", "56789")
    assert DatabaseSettings.of_service("case").url == (
        "postgresql://flowcase@127.0.0.1:56789/flowcase_case"
    )
    monkeypatch.setenv("FLOWCASE_DATABASE_URL", "postgresql://u@db.example:5432/cases")
    assert DatabaseSettings.of_service("case").url == "postgresql://u@db.example:5432/cases"


async def test_verify_without_a_url_reads_the_case_services_database(database_url: str) -> None:
    port = str(urlsplit(database_url).port)
    result = await _verify(
        "--all", env={"FLOWCASE_DATABASE_URL": None, "FLOWCASE_POSTGRES_PORT": port}
    )
    # Whatever that database holds, the command says which it read: flowcase_case.
    assert result.output.startswith(f"case chains in 127.0.0.1:{port}/flowcase_case\n")


async def test_verify_of_a_database_without_a_case_store_fails_and_creates_nothing(
    database_url: str,
) -> None:
    result = await _verify("--all", "--database-url", database_url)
    assert result.exit_code == 2, result.output
    assert "cannot read case events" in result.output
    assert "case chains intact" not in result.output
    assert await _tables(database_url) == set()


async def test_verify_all_of_an_empty_case_store_is_not_an_all_clear(
    database_url: str, kafka_env: dict[str, str | None]
) -> None:
    CaseApplication(env=postgres_env(database_url, pool_size=1)).close()  # tables, no case
    result = await _verify("--all", "--database-url", database_url, env=kafka_env)
    assert result.exit_code == 2, result.output
    assert "nothing verified" in result.output
    assert "0 of 0" not in result.output


async def test_verify_without_the_anchors_is_not_an_all_clear(database_url: str) -> None:
    application = CaseApplication(env=postgres_env(database_url, pool_size=1))
    try:
        application.open_case("Payroll lockout", actor="sup-1")
    finally:
        application.close()
    # Nothing listens on port 1: the chains could be checked, but not against their anchors.
    nowhere = {"FLOWCASE_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    result = await _verify("--all", "--database-url", database_url, env=nowhere)
    assert result.exit_code == 2, result.output
    assert "cannot read the chain anchors from flowcase.case.chain-heads on 127.0.0.1:1" in (
        result.output
    )
    assert result.stdout == ""
