"""Effects follow from what is stored, whatever the service saw of its commit.

A proxy between the service and PostgreSQL swallows the answer to a COMMIT and cuts the
connection: the transaction is stored, and the service sees only a lost connection — what a
database restart or a network fault leaves behind. Whether it was starting requests, recording
an action's report or projecting, every action must still run, once. And whatever else leaves
an instance waiting on an action nothing carries out, the sweep runs it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from flowcase.devstack.faults import PostgresFaultProxy
from flowcase.devstack.in_process import eventually
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.workflow.composition import build_service
from flowcase.workflow.settings import WorkflowSettings
from flowcase.workflow.triggers import Submit

CUTS = 24
WAVES = 12
PER_WAVE = 10


def _through(proxy: PostgresFaultProxy, database: DatabaseSettings) -> DatabaseSettings:
    url = urlparse(database.url)
    credentials = url.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{proxy.host}:{proxy.listen_port}"
    return DatabaseSettings(url=url._replace(netloc=netloc, query="sslmode=disable").geturl())


async def test_no_action_is_lost_or_run_twice_when_commits_go_unanswered(
    module_kafka: KafkaSettings,
    module_database: DatabaseSettings,
    far_side: Any,
    intake: Any,
    workflow_events: Any,
) -> None:
    target = urlparse(module_database.url).port
    assert target is not None
    proxy = PostgresFaultProxy(listen_port=0, target_port=target)
    await proxy.start()
    settings = WorkflowSettings(connectors=far_side.connectors(), timer_poll_seconds=0.1)
    service = await build_service(module_kafka, _through(proxy, module_database), settings)
    requests = []
    try:
        async with service.running():
            # Waves under load, each with commits cut while its requests start and their
            # actions report: starts, reports and the projection all lose answers.
            for wave in range(WAVES):
                proxy.cut_commits(CUTS // WAVES)
                for i in range(PER_WAVE):
                    requests.append(
                        await intake.submit(
                            "password_reset", {"account": f"cut{wave}-{i}", "system": "okta"}
                        )
                    )
                await _progress(proxy, wanted=(wave + 1) * CUTS // WAVES)
            outcomes = [await workflow_events.outcome(r, timeout=120) for r in requests]
            # A notification goes out once its save is confirmed: for a commit nobody heard,
            # that may be after the relay published the outcome.
            ours = {str(r) for r in requests}
            calls = await eventually(
                lambda: _calls_to_the_far_side(far_side, ours),
                lambda calls: calls.total() >= 2 * len(requests),
                timeout=120,
            )
            saves_confirmed = service.workflow.saves_confirmed
    finally:
        await proxy.stop()

    assert proxy.cut == CUTS
    assert [str(o.outcome) for o in outcomes] == ["completed"] * len(requests)
    # Every action and every notification reached the far side exactly once.
    assert Counter(connector for connector, _ in calls) == {
        "identity-provider": len(requests),
        "email": len(requests),
    }
    assert set(calls.values()) == {1}
    # The cuts did land on the service's own saves, not only on its projection.
    assert saves_confirmed > 0


async def _calls_to_the_far_side(far_side: Any, requests: set[str]) -> Counter[tuple[str, str]]:
    calls = [c for c in far_side.calls if c["request_id"] in requests]
    return Counter((c["connector"], c["idempotency_key"]) for c in calls)


async def _progress(proxy: PostgresFaultProxy, *, wanted: int) -> None:
    """Until the armed cuts have happened (bounded: commits keep coming while work is left)."""
    for _ in range(600):
        if proxy.cut >= wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {proxy.cut} of {wanted} commits cut; {proxy.commits} answered")


async def test_the_sweep_runs_an_action_that_nothing_carries_out(
    module_kafka: KafkaSettings,
    module_database: DatabaseSettings,
    far_side: Any,
    workflow_events: Any,
) -> None:
    settings = WorkflowSettings(
        connectors=far_side.connectors(), timer_poll_seconds=0.1, action_recovery_seconds=1
    )
    service = await build_service(module_kafka, module_database, settings)
    async with service.running():
        await asyncio.wait_for(service.projection.caught_up.wait(), 60)
        # Started through the application alone: stored, its action decided and never run.
        request_id = uuid.uuid4()
        submission = Submit(
            request_id=request_id,
            request_type="password_reset",
            requester="jdoe@example.com",
            payload={"account": "forgotten", "system": "okta"},
        )
        effects = await asyncio.to_thread(service.application.submit, submission, datetime.now(UTC))
        assert effects  # the action the service never heard of
        assert str((await workflow_events.outcome(request_id, timeout=60)).outcome) == "completed"
        assert service.workflow.actions_recovered == 1
        calls = await eventually(
            lambda: _calls_to_the_far_side(far_side, {str(request_id)}),
            lambda calls: calls.total() >= 2,
        )
    assert [connector for connector, _ in calls] == ["identity-provider", "email"]
