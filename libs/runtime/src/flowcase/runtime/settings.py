"""HTTP settings every service shares (FLOWCASE_HTTP_* environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class HttpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWCASE_HTTP_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface the HTTP API listens on.")
    port: int = Field(default=8000, description="Port the HTTP API listens on.")
    max_body_bytes: int = Field(
        default=256 * 1024, description="Larger request bodies are refused with 413."
    )


class AuthSettings(BaseSettings):
    """Who may call the APIs: bearer JWTs from an OIDC issuer, or signed locally in development."""

    model_config = SettingsConfigDict(env_prefix="FLOWCASE_AUTH_", extra="ignore")

    issuer: str = Field(default="flowcase-local", description="Expected `iss` claim.")
    audience: str = Field(default="flowcase", description="Expected `aud` claim.")
    jwks_url: str | None = Field(
        default=None,
        description="The OIDC issuer's JWKS URL: tokens must be signed by one of its keys.",
    )
    dev_secret: SecretStr | None = Field(
        default=None,
        description="Development only: HMAC secret of locally minted tokens (`flowcase token`).",
    )
    roles_claim: str = Field(default="roles", description="Claim holding the caller's roles.")
    teams_claim: str = Field(default="teams", description="Claim holding the caller's teams.")
    leeway_seconds: int = Field(default=30, description="Clock skew tolerated on exp/nbf/iat.")

    @field_validator("jwks_url", "dev_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `FLOWCASE_AUTH_DEV_SECRET=` means "none": an empty HMAC key signs and accepts nothing.
        return None if value == "" else value
