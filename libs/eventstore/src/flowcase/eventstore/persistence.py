"""The `eventsourcing` library's PostgreSQL persistence, configured from a service's DSN."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment

# The DSN's TLS parameters (libpq's names), which the library's factory does not read.
TLS_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey")


class TlsPostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory, whose connections also carry the TLS parameters of the
    application's environment (`POSTGRES_SSLMODE`, `POSTGRES_SSLROOTCERT`, `POSTGRES_SSLCERT`,
    `POSTGRES_SSLKEY`), as libpq connection parameters of that application's pool only."""

    def __init__(self, env: Environment | dict[str, str] | None) -> None:
        super().__init__(env)
        tls = {
            parameter: value
            for parameter in TLS_PARAMETERS
            if (value := self.env.get(f"POSTGRES_{parameter.upper()}"))
        }
        # The pool is built closed: its first connection is made after this, with these
        # parameters (psycopg_pool reads `kwargs` for every new connection).
        connect_kwargs: Any = self.datastore.pool.kwargs
        assert isinstance(connect_kwargs, dict)
        connect_kwargs.update(tls)


def postgres_env(
    database_url: str, *, pool_size: int = 5, create_table: bool = True
) -> dict[str, str]:
    """The environment an eventsourcing Application reads to store events in this database.

    The DSN's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` (e.g.
    `?sslmode=verify-full&sslrootcert=/etc/pg/ca.crt`) travel in that environment to
    `TlsPostgresFactory`, which gives them to the application's own connections; the process
    environment is left alone. asyncpg reads the same parameters from the DSN itself.
    """
    url = urlparse(database_url)
    if url.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url.scheme}://…")
    env = {
        "PERSISTENCE_MODULE": f"{__name__}:{TlsPostgresFactory.__name__}",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "CREATE_TABLE": "y" if create_table else "n",
    }
    for parameter, values in parse_qs(url.query).items():
        if parameter in TLS_PARAMETERS and values:
            env[f"POSTGRES_{parameter.upper()}"] = values[-1]
    return env
