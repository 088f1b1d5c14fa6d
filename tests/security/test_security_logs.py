"""No request payload and no secret reaches the logs at INFO.

The four services run in this process with every log record (theirs, the libraries', the
runtime's) formatted by the services' JSON formatter at INFO, from before they are built until
they are closed. A request whose payload fields hold canary strings goes through intake (over
HTTP and the raw topic), the workflow and into a case, where a note with a canary is added; a
password reset runs its action and notifies a canary address; refused submissions carry
canaries too; callers present valid, forged and expired tokens. The
DSNs carry a canary password (the local server trusts its clients, so it is sent but unused).
No line may hold a canary, a token, the development secret or the password.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest

from flowcase.devstack.in_process import served_webhook_sink
from flowcase.events import Topic
from flowcase.events.kafka import EventProducer
from flowcase.runtime.auth import Role, mint_token
from flowcase.runtime.telemetry import JsonLogFormatter
from flowcase.workflow.settings import WorkflowSettings

DATABASE_PASSWORD = "canary-database-password-5t7"
# One canary per payload field a step of the journey handles.
CANARIES = {
    "system": "canary-system-q8w",
    "complaint": "canary-complaint-z4x",
    "affected_account": "canary-account-m2v",
    "raw_complaint": "canary-raw-complaint-k9d",
    "refused_system": "canary-refused-system-p3n",
    "refused_raw": "canary-refused-raw-h6j",
    "note": "canary-case-note-b1c",
    "account": "canary-account-w7y",
    "delivery_email": "canary-delivery-r5e@example.com",
}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonLogFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def _every_log_line_at_info() -> Iterator[_Lines]:
    root = logging.getLogger()
    handler = _Lines()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture(scope="module")
async def logged(start_platform: Callable[..., Any]) -> AsyncIterator[tuple[Any, _Lines]]:
    with _every_log_line_at_info() as lines:
        async with served_webhook_sink() as sink:
            # The password reset's action reaches the sink; its email is left without a
            # connector, the path that logs a notification it could not deliver.
            workflow = WorkflowSettings(
                connectors={"identity-provider": f"{sink}/hooks/identity-provider"}
            )
            async with start_platform(
                database_password=DATABASE_PASSWORD, workflow_settings=workflow
            ) as platform:
                yield platform, lines


def _complaint(submission_id: str, system: str, complaint: str) -> dict[str, Any]:
    return {
        "submission_id": submission_id,
        "request_type": "access_complaint",
        "requester": "log-canary@example.com",
        "payload": {"system": system, "complaint": complaint},
    }


async def test_security_no_payload_or_secret_is_logged_at_info(
    logged: tuple[Any, _Lines], tokens: Any, auth_settings: Any, until: Callable[..., Any]
) -> None:
    platform, lines = logged
    client_token = tokens.token(Role.CLIENT, Role.ADMIN, subject="log-canary-client")
    caller = {"Authorization": f"Bearer {client_token}"}
    admin = tokens.admin()
    forged = jwt.encode(
        {"sub": "x", "roles": ["admin"]},
        "not-the-secret-of-this-session-0123456",
        algorithm="HS256",
    )
    expired = mint_token(
        auth_settings, subject="late", roles=[Role.ADMIN], ttl=timedelta(seconds=-120)
    )
    run = str(time.time_ns())

    async with platform.client("intake", caller) as intake:
        accepted = await intake.post(
            "/v1/requests",
            json={
                **_complaint(f"log-{run}", CANARIES["system"], CANARIES["complaint"]),
                "payload": {
                    "system": CANARIES["system"],
                    "complaint": CANARIES["complaint"],
                    "affected_account": CANARIES["affected_account"],
                },
            },
        )
        assert accepted.status_code == 202, accepted.text
        reset = await intake.post(
            "/v1/requests",
            json={
                "submission_id": f"log-{run}-reset",
                "request_type": "password_reset",
                "requester": "log-canary@example.com",
                "payload": {
                    "account": CANARIES["account"],
                    "system": "okta",
                    "delivery_email": CANARIES["delivery_email"],
                },
            },
        )
        assert reset.status_code == 202, reset.text
        refused = await intake.post(
            "/v1/requests",
            json={**_complaint(f"log-{run}-bad", CANARIES["refused_system"], ""), "priority": 9},
        )
        assert refused.status_code == 422
        for token in (forged, expired):
            denied = await intake.get("/v1/requests", headers={"Authorization": f"Bearer {token}"})
            assert denied.status_code == 401

    async with EventProducer(platform.kafka, client_id="log-canaries") as producer:
        topic = platform.kafka.topic(Topic.INTAKE_SUBMISSIONS)
        # One key, one partition: once the valid one is listed, the refused one was handled.
        bad = {**_complaint(f"log-{run}-raw-bad", CANARIES["refused_raw"], ""), "priority": 9}
        await producer.send_raw(topic, json.dumps(bad).encode(), key=b"log", headers=[])
        raw = _complaint(f"log-{run}-raw", "payroll", CANARIES["raw_complaint"])
        await producer.send_raw(topic, json.dumps(raw).encode(), key=b"log", headers=[])

    request_id = accepted.json()["request_id"]
    async with platform.client("intake", caller) as intake:
        detail = await until(
            lambda: intake.get(f"/v1/requests/{request_id}"),
            lambda r: r.status_code == 200 and r.json()["case_id"],
        )
        await until(
            lambda: intake.get(f"/v1/requests/{reset.json()['request_id']}"),
            lambda r: r.json()["status"] == "completed",
        )
        await until(lambda: intake.get("/v1/requests"), lambda r: len(r.json()["items"]) == 3)
    case_id = detail.json()["case_id"]
    async with platform.client("case", admin) as case:
        version = (await case.get(f"/v1/cases/{case_id}")).json()["version"]
        noted = await case.post(
            f"/v1/cases/{case_id}/notes",
            json={"expected_version": version, "text": CANARIES["note"]},
        )
        assert noted.status_code in (200, 201), noted.text

    secrets = {
        "client token": client_token,
        "forged token": forged,
        "expired token": expired,
        "admin token": admin["Authorization"].removeprefix("Bearer "),
        "development secret": auth_settings.dev_secret.get_secret_value(),
        "database password": DATABASE_PASSWORD,
        **CANARIES,
    }
    assert any('"logger": "flowcase.' in line for line in lines.lines), "no service log captured"
    leaks = [
        f"{name}: {line[:300]}"
        for line in lines.lines
        for name, secret in secrets.items()
        if secret in line
    ]
    assert not leaks, "\n".join(leaks)
