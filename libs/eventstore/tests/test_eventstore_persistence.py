"""postgres_env: the DSN's parts, password and TLS parameters reach the event store."""

from __future__ import annotations

import os

import pytest

from flowcase.eventstore import postgres_env


@pytest.fixture(autouse=True)
def _environment_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """postgres_env sets libpq variables process-wide; they must not outlive the test (a leaked
    PGSSLROOTCERT makes every later connection look for a CA file that does not exist)."""
    monkeypatch.setattr(os, "environ", os.environ.copy())


def test_the_dsn_becomes_the_event_stores_environment() -> None:
    env = postgres_env("postgresql://case%40svc:p%3Ass@db.internal:6432/flowcase_case")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db.internal", "6432")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("case@svc", "p:ss")
    assert env["POSTGRES_DBNAME"] == "flowcase_case"


def test_tls_parameters_of_the_dsn_reach_libpq(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"):
        monkeypatch.delenv(name, raising=False)
    postgres_env(
        "postgresql://u:p@db.internal/flowcase_case"
        "?sslmode=verify-full&sslrootcert=/etc/pg/ca.crt&application_name=case"
    )

    assert os.environ["PGSSLMODE"] == "verify-full"
    assert os.environ["PGSSLROOTCERT"] == "/etc/pg/ca.crt"
    assert "PGSSLCERT" not in os.environ


def test_an_explicit_libpq_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSSLMODE", "require")
    postgres_env("postgresql://u:p@db.internal/x?sslmode=disable")

    assert os.environ["PGSSLMODE"] == "require"
