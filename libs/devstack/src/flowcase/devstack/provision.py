"""Provisioning a deployment: the platform's topics and one database per service.

The local stack runs it after starting its servers; docker-compose's one-shot `init` service and a
cluster's Job run the same code against their own endpoints (`python -m
flowcase.devstack.provision`, or `flowcase stack provision`). Both steps are idempotent: what
exists is left as it is, so it runs on every start and after an upgrade.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from flowcase.events.kafka.admin import ensure_topics
from flowcase.events.settings import LOCAL_POSTGRES_URL, KafkaSettings

SERVICE_DATABASES = ("intake", "workflow", "case", "governance")


class ProvisionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWCASE_PROVISION_", extra="ignore")

    admin_database_url: str = Field(
        default=LOCAL_POSTGRES_URL,
        description="DSN of a role that may CREATE DATABASE; each service's database "
        "`flowcase_<service>` is created through it.",
    )
    partitions: int = Field(
        default=3,
        ge=1,
        description="Partitions of each topic this run creates (existing topics keep theirs). "
        "The most replicas of one consumer service that share a topic's work.",
    )
    replication_factor: int = Field(
        default=1,
        ge=1,
        description="Copies of each partition on distinct brokers (1 for a single broker; 3 "
        "for a production cluster).",
    )


@dataclass(frozen=True)
class Provisioned:
    topics: list[str]
    databases: list[str]


async def create_databases(
    admin_database_url: str, services: tuple[str, ...] = SERVICE_DATABASES
) -> list[str]:
    """Create `flowcase_<service>` for each service that lacks it; return the names created."""
    conn = await asyncpg.connect(admin_database_url)
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        created = []
        for service in services:
            name = f"flowcase_{service}"
            if name not in existing:
                # CREATE DATABASE takes no bind parameters; the name is ours, quoted.
                await conn.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
        return created
    finally:
        await conn.close()


async def provision(
    kafka: KafkaSettings,
    settings: ProvisionSettings,
    services: tuple[str, ...] = SERVICE_DATABASES,
) -> Provisioned:
    databases = await create_databases(settings.admin_database_url, services)
    topics = await ensure_topics(
        kafka, partitions=settings.partitions, replication_factor=settings.replication_factor
    )
    return Provisioned(topics=topics, databases=databases)


def main() -> None:
    kafka, settings = KafkaSettings(), ProvisionSettings()
    done = asyncio.run(provision(kafka, settings))
    print(
        f"topics created: {', '.join(done.topics) or 'none (all existed)'}; "
        f"databases created: {', '.join(done.databases) or 'none (all existed)'}",
        flush=True,
    )


if __name__ == "__main__":
    main()
