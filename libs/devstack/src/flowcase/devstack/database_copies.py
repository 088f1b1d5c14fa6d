"""Databases of one's own on a shared PostgreSQL server, for a test, a module or a run."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable

import asyncpg

from flowcase.devstack.endpoints import Endpoints
from flowcase.events.settings import DatabaseSettings


@contextlib.asynccontextmanager
async def own_databases(
    stack: Endpoints, services: Iterable[str], *, prefix: str, password: str | None = None
) -> AsyncIterator[dict[str, DatabaseSettings]]:
    """A fresh empty database for each service (`<prefix>_<service>_<random>`), dropped
    afterwards whoever still holds connections. `password` goes into the URLs the services get
    (the local server trusts its clients: it travels but is never checked)."""
    names = {service: f"{prefix}_{service}_{uuid.uuid4().hex[:10]}" for service in services}
    base, _, _ = stack.database_url.rpartition("/")
    if password is not None:
        scheme, _, rest = base.partition("://")
        user, _, host = rest.rpartition("@")
        base = f"{scheme}://{user.split(':')[0]}:{password}@{host}"
    admin = await asyncpg.connect(stack.database_url)
    try:
        for name in names.values():
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield {service: DatabaseSettings(url=f"{base}/{name}") for service, name in names.items()}
    finally:
        admin = await asyncpg.connect(stack.database_url)
        try:
            for name in names.values():
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
