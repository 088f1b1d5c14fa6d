"""The HTTP webhook connector against a scripted far side, and once over the network."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import aiohttp
import pytest

from flowcase.workflow.connectors import run_action
from flowcase.workflow.effects import RunAction
from flowcase.workflow.triggers import ReportActionFailed, ReportActionSucceeded
from flowcase.workflow.webhook import (
    IDEMPOTENCY_HEADER,
    NoAnswer,
    SessionPoster,
    WebhookConnector,
    WebhookConnectors,
)

URL = "https://erp.example/hooks/flowcase"
ACTION = RunAction(
    request_id=UUID("0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69"),
    step="schedule-payment",
    connector="erp",
    operation="schedule-payment",
    input={"invoice_id": "INV-1", "amount": 1840.5},
    idempotency_key="0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69/schedule-payment",
    attempts=4,
    backoff=timedelta(seconds=2),
    max_backoff=timedelta(seconds=5),
)


def answer(status: int, body: Any = None) -> tuple[int, bytes]:
    """An HTTP answer: a JSON body, a text one, or none."""
    if body is None:
        return status, b""
    return status, body.encode() if isinstance(body, str) else json.dumps(body).encode()


@dataclass
class Call:
    url: str
    body: bytes
    headers: Mapping[str, str]


class Webhook:
    """A scripted far side: answers each call with the next answer (or raises the error)."""

    def __init__(self, *answers: tuple[int, bytes] | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[Call] = []
        self.waits: list[float] = []

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        self.calls.append(Call(url, body, dict(headers)))
        given = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(given, Exception):
            raise given
        return given

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def connector(self) -> WebhookConnector:
        return WebhookConnector(URL, self, headers={"Authorization": "Bearer t"}, sleep=self.sleep)


@pytest.fixture
def webhook() -> Callable[..., Webhook]:
    return Webhook


async def test_success_posts_the_action_with_its_idempotency_key(webhook) -> None:
    hook = webhook(answer(200, {"payment_id": "P-7"}))
    report = await hook.connector().run(ACTION)
    assert report == ReportActionSucceeded(
        step="schedule-payment", attempts=1, result={"payment_id": "P-7"}
    )
    [call] = hook.calls
    assert call.headers[IDEMPOTENCY_HEADER] == ACTION.idempotency_key
    assert call.headers["Authorization"] == "Bearer t"
    assert call.body == (
        b'{"request_id":"0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69","step":"schedule-payment",'
        b'"operation":"schedule-payment","input":{"invoice_id":"INV-1","amount":1840.5}}'
    )


async def test_server_errors_and_network_errors_are_retried_with_backoff(webhook) -> None:
    hook = webhook(answer(503), NoAnswer("refused"), answer(429), answer(204))
    report = await hook.connector().run(ACTION)
    assert report == ReportActionSucceeded(step="schedule-payment", attempts=4, result={})
    assert hook.waits == [2, 4, 5]
    assert {c.headers[IDEMPOTENCY_HEADER] for c in hook.calls} == {ACTION.idempotency_key}


async def test_giving_up_after_the_last_attempt_reports_a_failure(webhook) -> None:
    hook = webhook(answer(502))
    report = await hook.connector().run(ACTION)
    assert report == ReportActionFailed(
        step="schedule-payment", attempts=4, error=f"HTTP 502 from {URL}"
    )


async def test_a_client_error_is_not_retried(webhook) -> None:
    hook = webhook(answer(422, {"error": "unknown invoice"}))
    report = await hook.connector().run(ACTION)
    assert report == ReportActionFailed(
        step="schedule-payment", attempts=1, error=f"HTTP 422 from {URL}"
    )
    assert hook.waits == []


async def test_a_non_object_answer_is_kept_as_the_body(webhook) -> None:
    hook = webhook(answer(200, "queued"))
    report = await hook.connector().run(ACTION)
    assert report.result == {"body": "queued"}


async def test_run_action_picks_the_named_connector(webhook) -> None:
    hook = webhook(answer(200, {}))
    assert (await run_action({"erp": hook.connector()}, ACTION)).attempts == 1
    missing = await run_action({}, ACTION)
    assert missing == ReportActionFailed(
        step="schedule-payment", attempts=1, error="no connector named 'erp' is configured"
    )


async def test_connectors_not_configured_one_by_one_go_through_the_gateway(webhook) -> None:
    hook = webhook(answer(200, {}))
    routed = WebhookConnectors({"calendar": URL}, hook, gateway="http://sink.local/hooks/")
    assert isinstance((await run_action(routed, ACTION)), ReportActionSucceeded)
    assert hook.calls[-1].url == "http://sink.local/hooks/erp"
    without_gateway = WebhookConnectors({"calendar": URL}, hook)
    assert isinstance((await run_action(without_gateway, ACTION)), ReportActionFailed)


async def test_calls_in_flight_across_connectors_are_bounded() -> None:
    in_flight, most = 0, 0
    release = asyncio.Event()

    class HeldFarSide:
        async def post(
            self, url: str, body: bytes, headers: Mapping[str, str]
        ) -> tuple[int, bytes]:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await release.wait()
            in_flight -= 1
            return answer(200, {})

    connectors = WebhookConnectors(
        {"erp": URL}, HeldFarSide(), gateway="https://gw.example", max_calls=2
    )
    calls = [
        asyncio.create_task(connectors[name].run(ACTION))
        for name in ("erp", "erp", "crm", "crm", "erp")
    ]
    await asyncio.sleep(0.05)
    assert most == 2
    release.set()
    reports = await asyncio.gather(*calls)
    assert all(isinstance(r, ReportActionSucceeded) for r in reports)
    assert most == 2


# Over the network: a real server (the conftest's far side) and a real session ---------------

_imports: list[str] | None = None


def _record_imports(event: str, args: tuple[object, ...]) -> None:
    if event == "import" and _imports is not None:
        _imports.append(str(args[0]))


sys.addaudithook(_record_imports)  # audit hooks stay for the process: this one records on demand


async def test_a_call_over_the_network_succeeds_and_looks_for_no_module(far_side) -> None:
    """A module missing on a hot path is looked for on disk at every call (httpx's `sniffio`
    was 7.5 % of the workflow's profile): a call imports nothing after the first."""
    global _imports
    async with aiohttp.ClientSession() as session:
        url = far_side.connectors()["identity-provider"]
        connector = WebhookConnector(url, SessionPoster(session))
        assert isinstance(await connector.run(ACTION), ReportActionSucceeded)
        _imports = []
        try:
            assert isinstance(await connector.run(ACTION), ReportActionSucceeded)
            looked_for = list(_imports)
        finally:
            _imports = None
        refused = WebhookConnector("http://127.0.0.1:1/hooks/x", SessionPoster(session))
        report = await refused.run(ACTION.model_copy(update={"attempts": 1}))
    assert looked_for == []
    assert isinstance(report, ReportActionFailed)
    assert "calling http://127.0.0.1:1/hooks/x" in report.error
