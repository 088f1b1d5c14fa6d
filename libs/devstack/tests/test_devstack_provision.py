from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from flowcase.devstack.endpoints import Endpoints
from flowcase.devstack.provision import ProvisionSettings, provision
from flowcase.events.kafka.admin import delete_topics
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import TOPIC_SPECS, Topic


@pytest.fixture
async def service_names(stack: Endpoints) -> AsyncIterator[tuple[str, ...]]:
    """Two made-up service names whose databases this test creates, dropped afterwards."""
    names = tuple(f"t{uuid.uuid4().hex[:10]}" for _ in range(2))
    yield names
    admin = await asyncpg.connect(stack.database_url)
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "flowcase_{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _describe(settings: KafkaSettings) -> tuple[dict[str, int], str]:
    admin = AIOKafkaAdminClient(**settings.client_options())
    await admin.start()
    try:
        names = [settings.topic(spec.topic) for spec in TOPIC_SPECS]
        definitions = ConfigResource(
            ConfigResourceType.TOPIC, settings.topic(Topic.WORKFLOW_DEFINITIONS)
        )
        # A broker that has just started can describe new topics before their partitions and
        # configs are in: ask until they are.
        for _ in range(50):
            described = await admin.describe_topics(names)
            partitions = {t["topic"]: len(t["partitions"]) for t in described}
            [configs] = await admin.describe_configs([definitions])
            entries = {c[0]: c[1] for c in configs.resources[0][4]}
            if all(partitions.values()) and "cleanup.policy" in entries:
                return partitions, entries["cleanup.policy"]
            await asyncio.sleep(0.2)
        raise AssertionError(f"topics {names} not fully described after 10 s")
    finally:
        await admin.close()


async def test_provision_creates_topics_and_databases_once(
    stack: Endpoints, service_names: tuple[str, ...]
) -> None:
    kafka = KafkaSettings(bootstrap=stack.kafka_bootstrap, topic_suffix=f".{uuid.uuid4().hex[:8]}")
    settings = ProvisionSettings(admin_database_url=stack.database_url, partitions=2)

    try:
        first = await provision(kafka, settings, service_names)
        again = await provision(kafka, settings, service_names)
        partitions, policy = await _describe(kafka)
    finally:
        await delete_topics(kafka)

    assert sorted(first.topics) == sorted(kafka.topic(spec.topic) for spec in TOPIC_SPECS)
    assert first.databases == [f"flowcase_{name}" for name in service_names]
    assert again.topics == []
    assert again.databases == []
    assert set(partitions.values()) == {2}
    assert policy == "compact"
    admin = await asyncpg.connect(stack.database_url)
    try:
        rows = await admin.fetch("SELECT datname FROM pg_database")
    finally:
        await admin.close()
    assert {f"flowcase_{name}" for name in service_names} <= {r["datname"] for r in rows}


async def test_the_provision_module_reads_its_endpoints_from_the_environment(
    stack: Endpoints,
) -> None:
    suffix = f".{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "FLOWCASE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "FLOWCASE_KAFKA_TOPIC_SUFFIX": suffix,
        "FLOWCASE_PROVISION_ADMIN_DATABASE_URL": stack.database_url,
        "FLOWCASE_PROVISION_PARTITIONS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flowcase.devstack.provision",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    kafka = KafkaSettings(bootstrap=stack.kafka_bootstrap, topic_suffix=suffix)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, err.decode()
        assert f"{Topic.CASE_EVENTS}{suffix}" in out.decode()
        partitions, _ = await _describe(kafka)
    finally:
        await delete_topics(kafka)
    assert set(partitions.values()) == {1}
