from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import Depends
from typer.testing import CliRunner

from flowcase.runtime import create_app
from flowcase.runtime.auth import Authenticator, Principal, Role, mint_token, requires
from flowcase.runtime.settings import AuthSettings
from flowcase.runtime.token_cli import app as token_app

DEV_SECRET = "s3cret-for-tests-only-0123456789abcdef"
SETTINGS = AuthSettings(dev_secret=DEV_SECRET)


def _app():
    auth = Authenticator(SETTINGS)
    app = create_app(title="t", description="d")

    @app.get("/approvals")
    async def approvals(who: Principal = Depends(requires(auth, Role.SUPERVISOR))) -> dict:
        return {"subject": who.subject, "teams": sorted(who.teams)}

    return app


def _token(*roles: Role, teams=("payroll",), **kw) -> dict[str, str]:
    token = mint_token(SETTINGS, subject="u1", roles=roles, teams=teams, **kw)
    return {"Authorization": f"Bearer {token}"}


async def _get(headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/approvals", headers=headers)


async def test_the_right_role_passes_and_carries_its_teams() -> None:
    response = await _get(_token(Role.SUPERVISOR))
    assert response.status_code == 200
    assert response.json() == {"subject": "u1", "teams": ["payroll"]}


async def test_admin_passes_every_role_check() -> None:
    assert (await _get(_token(Role.ADMIN, teams=()))).status_code == 200


async def test_the_wrong_role_is_403() -> None:
    response = await _get(_token(Role.AGENT))
    assert response.status_code == 403
    assert "supervisor" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dTpw"},
        {"Authorization": "Bearer not-a-jwt"},
        {
            "Authorization": "Bearer "
            + jwt.encode(
                {
                    "sub": "u",
                    "iss": "flowcase-local",
                    "aud": "flowcase",
                    "exp": 9999999999,
                    "roles": ["admin"],
                },
                "another-secret-0123456789abcdefghij",
                algorithm="HS256",
            )
        },
    ],
    ids=["missing", "not-bearer", "garbage", "wrong-key"],
)
async def test_a_missing_or_invalid_token_is_401_with_a_challenge(headers) -> None:
    response = await _get(headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_an_expired_token_is_401() -> None:
    response = await _get(_token(Role.SUPERVISOR, ttl=timedelta(minutes=-5)))
    assert response.status_code == 401


@pytest.mark.parametrize(
    "claims",
    [{"exp": "9999999999"}, {"exp": True}, {"nbf": "0"}, {"iat": "1"}, {"exp": None}],
    ids=["exp-string", "exp-bool", "nbf-string", "iat-string", "exp-null"],
)
async def test_a_date_claim_that_is_not_a_number_is_401(claims: dict[str, object]) -> None:
    token = jwt.encode(
        {"sub": "u", "iss": "flowcase-local", "aud": "flowcase", "exp": 9999999999}
        | {"roles": ["supervisor"]}
        | claims,
        DEV_SECRET,
        algorithm="HS256",
    )
    response = await _get({"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert next(iter(claims)) in response.json()["detail"]


def test_team_visibility() -> None:
    agent = Principal("a", frozenset({Role.AGENT}), frozenset({"payroll"}))
    admin = Principal("b", frozenset({Role.ADMIN}), frozenset())
    assert agent.sees_team("payroll")
    assert not agent.sees_team("legal")
    assert not agent.sees_team(None)
    assert admin.sees_team("legal")


def test_unknown_roles_in_a_shared_identity_provider_are_ignored() -> None:
    token = jwt.encode(
        {
            "sub": "u",
            "iss": "flowcase-local",
            "aud": "flowcase",
            "exp": 9999999999,
            "roles": ["agent", "billing-admin"],
        },
        DEV_SECRET,
        algorithm="HS256",
    )
    assert Authenticator(SETTINGS).principal(token).roles == {Role.AGENT}


def test_flowcase_token_mints_a_token_services_accept(monkeypatch) -> None:
    monkeypatch.setenv("FLOWCASE_AUTH_DEV_SECRET", DEV_SECRET)
    result = CliRunner().invoke(token_app, ["--role", "agent", "--team", "it", "--subject", "ana"])
    assert result.exit_code == 0, result.output
    principal = Authenticator(SETTINGS).principal(result.stdout.strip())
    assert principal == Principal("ana", frozenset({Role.AGENT}), frozenset({"it"}))


def test_minting_without_a_dev_secret_is_refused(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("FLOWCASE_AUTH_DEV_SECRET", raising=False)
    monkeypatch.setenv("FLOWCASE_HOME", str(tmp_path))  # no local stack's secret there
    result = CliRunner().invoke(token_app, ["--role", "agent"])
    assert result.exit_code == 2


def test_flowcase_token_reads_the_local_stacks_secret_when_the_variable_is_unset(
    monkeypatch, tmp_path
) -> None:
    secret_file = tmp_path / "auth" / "dev-secret"
    secret_file.parent.mkdir()
    secret_file.write_text(DEV_SECRET + "\n")
    monkeypatch.delenv("FLOWCASE_AUTH_DEV_SECRET", raising=False)
    monkeypatch.setenv("FLOWCASE_HOME", str(tmp_path))
    result = CliRunner().invoke(token_app, ["--role", "ops_leader"])
    assert result.exit_code == 0, result.output
    assert Authenticator(SETTINGS).principal(result.stdout.strip()).roles == {Role.OPS_LEADER}


async def test_a_cookie_carries_the_token_only_where_the_authenticator_allows_it() -> None:
    token = mint_token(SETTINGS, subject="u1", roles=[Role.OPS_LEADER])
    app = create_app(title="t", description="d")

    @app.get("/page")
    async def page(who: Principal = Depends(Authenticator(SETTINGS, cookie="flowcase_token"))):
        return {"subject": who.subject}

    @app.get("/api")
    async def api(who: Principal = Depends(Authenticator(SETTINGS))):
        return {"subject": who.subject}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", cookies={"flowcase_token": token}
    ) as client:
        assert (await client.get("/page")).json() == {"subject": "u1"}
        assert (await client.get("/api")).status_code == 401


def test_an_empty_dev_secret_or_jwks_url_is_unset(monkeypatch) -> None:
    monkeypatch.setenv("FLOWCASE_AUTH_DEV_SECRET", "")
    monkeypatch.setenv("FLOWCASE_AUTH_JWKS_URL", "")
    settings = AuthSettings()
    assert settings.dev_secret is None
    assert settings.jwks_url is None
