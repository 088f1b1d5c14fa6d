"""docker-compose for real, where a Docker engine answers: up, one request end to end, down."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flowcase.devstack.endpoints import docker_answers
from flowcase.runtime.auth import Role, mint_token
from flowcase.runtime.settings import AuthSettings

pytestmark = pytest.mark.integration  # runs the platform in containers

PROJECT = f"flowcase-e2e-{uuid.uuid4().hex[:6]}"
# The services' token secret (docker-compose.yml takes it from the shell), so the test can sign.
SECRET = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def compose_stack(root: Path) -> Iterator[str]:
    if not docker_answers():
        pytest.skip(
            "no Docker engine answers here: docker-compose.yml is checked statically "
            "(test_deploy_compose.py) and each image's install and command are run without "
            "Docker (test_deploy_images_run.py)"
        )
    compose = ["docker", "compose", "--project-name", PROJECT, "--file", "docker-compose.yml"]
    up = subprocess.run(
        [*compose, "up", "--build", "--wait", "--wait-timeout", "600"],
        cwd=root,
        env={**os.environ, "FLOWCASE_AUTH_DEV_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield "http://127.0.0.1:8001"
    finally:
        subprocess.run([*compose, "down", "--volumes"], cwd=root, capture_output=True, timeout=300)


def test_a_submitted_request_reaches_the_platform_through_compose(compose_stack: str) -> None:
    token = mint_token(AuthSettings(dev_secret=SECRET), subject="erp", roles=[Role.CLIENT])
    with httpx.Client(
        base_url=compose_stack, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        types = client.get("/v1/request-types").json()
        assert types, "workflow published no request type"
        accepted = client.post(
            "/v1/requests",
            headers={"Idempotency-Key": f"e2e-{uuid.uuid4()}"},
            json={
                "request_type": "invoice_approval",
                "requester": "ap-clerk-7",
                "priority": "normal",
                "payload": {
                    "invoice_id": "INV-2291",
                    "amount": 1840.5,
                    "currency": "EUR",
                    "vendor": "Acme",
                },
            },
        )
        assert accepted.status_code == 202, accepted.text
        status_url = accepted.json()["status_url"]
        deadline = time.monotonic() + 120
        while True:
            status = client.get(status_url).json()
            # Past "submitted": workflow consumed the request and intake followed its events.
            if status.get("status") not in (None, "submitted"):
                break
            assert time.monotonic() < deadline, status
            time.sleep(1)
        assert status["status"] in {"in_workflow", "waiting_for_approval", "escalated", "completed"}
