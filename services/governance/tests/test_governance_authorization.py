"""Who may call each governance endpoint: every endpoint by role. Ops leaders (and admins) read
everything; nobody else reads anything. Governance holds no object of a team, so no 404 rule."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from flowcase.devstack.authorization_matrix import Expect, Rule, Scope, cases, routes, rule
from flowcase.devstack.dev_tokens import Tokens
from flowcase.events.settings import KafkaSettings
from flowcase.runtime.auth import Role, mint_token

RULES: dict[str, Rule] = {
    "GET /v1/processes": rule(Role.OPS_LEADER),
    # No event names the process type here: an allowed caller is told so.
    "GET /v1/processes/{process_type}": rule(Role.OPS_LEADER, allowed={404}),
    "GET /v1/alerts": rule(Role.OPS_LEADER),
    "GET /": rule(Role.OPS_LEADER),
    # As for the API: no event names the process type here.
    "GET /processes/{process_type}": rule(Role.OPS_LEADER, allowed={404}),
}

PATHS = {
    "GET /v1/processes": "/v1/processes",
    "GET /v1/processes/{process_type}": "/v1/processes/invoice-approval",
    "GET /v1/alerts": "/v1/alerts",
    "GET /": "/",
    "GET /processes/{process_type}": "/processes/invoice-approval",
}


@pytest.fixture(scope="module")
async def governance(
    module_kafka_settings: KafkaSettings,
    module_database_url: str,
    start_governance_module: Callable[..., Awaitable[Any]],
) -> Any:
    return await start_governance_module(module_kafka_settings, module_database_url)


async def test_every_endpoint_has_a_rule(governance: Any) -> None:
    assert routes(governance.service.app) == set(RULES) == set(PATHS)


@pytest.mark.parametrize(("endpoint", "role", "scope"), cases(RULES))
async def test_who_may_call_what(
    governance: Any, tokens: Tokens, endpoint: str, role: Role | None, scope: Scope
) -> None:
    # Without a token, the running service's own ops-leader header must not be sent.
    headers = {"Authorization": ""} if role is None else tokens.headers(role)
    response = await governance.http.get(PATHS[endpoint], headers=headers)
    expected = RULES[endpoint].expect(role, scope)
    if expected is Expect.ALLOWED:
        assert response.status_code in RULES[endpoint].allowed, response.text
    else:
        assert response.status_code == int(expected), response.text


async def test_the_dashboard_sets_its_cookie_from_a_token_once(
    governance: Any, tokens: Tokens
) -> None:
    transport = httpx.ASGITransport(app=governance.service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://governance") as browser:
        assert (await browser.get("/")).status_code == 401
        agent = await browser.get("/", params={"token": tokens.token(Role.AGENT)})
        assert agent.status_code == 403
        moved = await browser.get(
            "/", params={"token": tokens.token(Role.OPS_LEADER), "granularity": "week"}
        )
        assert moved.status_code == 303
        assert moved.headers["location"] == "/?granularity=week"
        cookie = moved.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert (await browser.get("/")).status_code == 200
        # The cookie opens the page only, never the API.
        assert (await browser.get("/v1/processes")).status_code == 401


async def test_a_browser_without_a_valid_token_gets_a_page_saying_what_to_do(
    governance: Any, tokens: Tokens
) -> None:
    expired = mint_token(
        tokens.settings, subject="ops", roles=[Role.OPS_LEADER], ttl=timedelta(seconds=-60)
    )
    transport = httpx.ASGITransport(app=governance.service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://governance") as browser:
        missing = await browser.get("/")
        stale = await browser.get("/", params={"token": expired})
        browser.cookies.set("flowcase_token", expired)
        stale_cookie = await browser.get("/")
        agent = await browser.get("/", params={"token": tokens.token(Role.AGENT)})

    for page, status, says in (
        (missing, 401, "a bearer token is required"),
        (stale, 401, "expired"),
        (stale_cookie, 401, "expired"),
        (agent, 403, "needs the <code>ops_leader</code> role"),
    ):
        assert page.status_code == status
        assert page.headers["content-type"].startswith("text/html")
        assert says in page.text
        assert "uv run flowcase token --role ops_leader" in page.text
    # The stale cookie is cleared, so the next visit starts clean.
    assert 'flowcase_token=""' in stale_cookie.headers["set-cookie"]
    # The API still answers clients with problem JSON.
    api = await governance.http.get("/v1/alerts", headers={"Authorization": ""})
    assert api.headers["content-type"] == "application/problem+json"
