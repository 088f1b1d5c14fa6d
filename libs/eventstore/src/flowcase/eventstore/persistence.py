"""The `eventsourcing` library's PostgreSQL persistence, configured from a service's DSN."""

from __future__ import annotations

from urllib.parse import unquote, urlparse


def postgres_env(database_url: str, *, pool_size: int = 5) -> dict[str, str]:
    """The environment an eventsourcing Application reads to store events in this database."""
    url = urlparse(database_url)
    if url.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url.scheme}://…")
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
