"""postgres_env: the DSN's parts, password and TLS parameters reach the event store, and only
the connections of the application given that environment."""

from __future__ import annotations

import asyncio
import os
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from flowcase.eventstore import postgres_env


class Ledger(Application[UUID]):
    pass


def test_the_dsn_becomes_the_event_stores_environment() -> None:
    env = postgres_env("postgresql://case%40svc:p%3Ass@db.internal:6432/flowcase_case")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db.internal", "6432")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("case@svc", "p:ss")
    assert env["POSTGRES_DBNAME"] == "flowcase_case"


def test_tls_parameters_travel_in_the_applications_environment_not_the_process() -> None:
    before = dict(os.environ)
    env = postgres_env(
        "postgresql://u:p@db.internal/flowcase_case"
        "?sslmode=verify-full&sslrootcert=/etc/pg/ca.crt&application_name=case"
    )

    assert dict(os.environ) == before
    assert env["POSTGRES_SSLMODE"] == "verify-full"
    assert env["POSTGRES_SSLROOTCERT"] == "/etc/pg/ca.crt"
    assert "POSTGRES_SSLCERT" not in env


async def test_the_applications_connections_carry_the_sslmode(database_url: str) -> None:
    before = dict(os.environ)

    def store_and_inspect() -> dict[str, str]:
        ledger = Ledger(env=postgres_env(f"{database_url}?sslmode=disable"))
        try:
            ledger.save(Aggregate())
            datastore = ledger.factory.datastore  # type: ignore[attr-defined]
            with datastore.get_connection() as conn:
                return dict(conn.info.get_parameters())
        finally:
            ledger.close()

    parameters = await asyncio.to_thread(store_and_inspect)

    assert parameters["sslmode"] == "disable"
    assert dict(os.environ) == before


async def test_a_required_tls_the_server_lacks_refuses_to_connect(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The local PostgreSQL has no TLS: `require` must fail, so the parameter is applied."""
    env = postgres_env(f"{database_url}?sslmode=require") | {"POSTGRES_CONNECT_TIMEOUT": "1"}

    def open_ledger() -> None:
        Ledger(env=env).close()

    with caplog.at_level("WARNING", logger="psycopg.pool"), pytest.raises(Exception, match="conn"):
        await asyncio.to_thread(open_ledger)
    assert "SSL" in caplog.text
