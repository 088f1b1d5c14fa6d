"""docs/deploy.md's configuration reference is what the settings classes say today."""

from __future__ import annotations

from types import ModuleType


def test_the_checked_in_configuration_reference_is_up_to_date(
    config_reference: ModuleType,
) -> None:
    generated = config_reference.render(config_reference.reference())
    assert config_reference.checked_in() == generated, (
        "docs/deploy.md's configuration reference is out of date: run "
        "`uv run python deploy/config_reference.py --write` and commit docs/deploy.md"
    )


def test_every_process_reads_the_shared_connection_settings(
    variables_read: dict[str, set[str]],
) -> None:
    for process, names in variables_read.items():
        assert "FLOWCASE_KAFKA_BOOTSTRAP" in names, process
        if process != "provision":
            assert {"FLOWCASE_DATABASE_URL", "FLOWCASE_HTTP_PORT"} <= names, process
