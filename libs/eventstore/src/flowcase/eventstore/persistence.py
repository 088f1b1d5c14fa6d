"""The `eventsourcing` library's PostgreSQL persistence, configured from a service's DSN."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlparse

# The DSN's TLS parameters, and the libpq variables that carry them to psycopg's connections.
_TLS_PARAMETERS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
}


def postgres_env(database_url: str, *, pool_size: int = 5) -> dict[str, str]:
    """The environment an eventsourcing Application reads to store events in this database.

    The library takes no TLS settings of its own, so the DSN's `sslmode`, `sslrootcert`,
    `sslcert` and `sslkey` (e.g. `?sslmode=verify-full&sslrootcert=/etc/pg/ca.crt`) become this
    process's libpq variables (PGSSLMODE, …), unless already set: psycopg's connections read
    them. asyncpg reads the same parameters from the DSN itself.
    """
    url = urlparse(database_url)
    if url.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url.scheme}://…")
    for parameter, values in parse_qs(url.query).items():
        if parameter in _TLS_PARAMETERS and values:
            os.environ.setdefault(_TLS_PARAMETERS[parameter], values[-1])
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "CREATE_TABLE": "y",
    }
