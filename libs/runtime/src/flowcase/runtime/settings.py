"""HTTP settings every service shares (FLOWCASE_HTTP_* environment variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HttpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWCASE_HTTP_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface the HTTP API listens on.")
    port: int = Field(default=8000, description="Port the HTTP API listens on.")
    max_body_bytes: int = Field(
        default=256 * 1024, description="Larger request bodies are refused with 413."
    )
