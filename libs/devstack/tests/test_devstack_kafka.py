"""Formatting the broker's storage with the real Kafka jars (Java, no broker started)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from flowcase.devstack.kafka import KafkaBroker, _kafka_cluster_id
from flowcase.devstack.layout import Layout, Ports

pytestmark = pytest.mark.integration  # runs the Kafka jars with Java


def test_storage_is_formatted_even_when_the_cluster_id_starts_with_a_dash(tmp_path: Path) -> None:
    # A UUID whose first six bits are 62 encodes to an id starting with "-" (about 1 in 32).
    cluster_id = uuid.UUID(bytes=b"\xf8" + uuid.uuid4().bytes[1:])
    assert _kafka_cluster_id(cluster_id).startswith("-")
    classpath = KafkaBroker(Layout.default(), Ports()).resolve_jars()
    broker = KafkaBroker(Layout(root=Layout.default().root, home=tmp_path), Ports())
    broker.folder.mkdir(parents=True)
    broker._format_storage(classpath, broker._write_config(), cluster_id)
    meta = (broker.folder / "data" / "meta.properties").read_text()
    assert f"cluster.id={_kafka_cluster_id(cluster_id)}" in meta
