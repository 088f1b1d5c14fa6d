"""Fresh PostgreSQL databases, one per service, for platforms assembled in a test process."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable

import asyncpg

from flowcase.events.settings import DatabaseSettings


@contextlib.asynccontextmanager
async def service_databases(
    admin_url: str, services: Iterable[str], *, prefix: str = "test"
) -> AsyncIterator[dict[str, DatabaseSettings]]:
    """Create an empty database per service through `admin_url`; drop them all on leaving."""
    names = {service: f"{prefix}_{service}_{uuid.uuid4().hex[:10]}" for service in services}
    base, _, _ = admin_url.rpartition("/")
    admin = await asyncpg.connect(admin_url)
    try:
        for name in names.values():
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield {service: DatabaseSettings(url=f"{base}/{name}") for service, name in names.items()}
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            for name in names.values():
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
