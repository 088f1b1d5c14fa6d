"""Connection settings every service shares, read from FLOWCASE_* environment variables."""

from __future__ import annotations

import os
import ssl
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from flowcase.events.topics import Topic


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWCASE_KAFKA_", extra="ignore")

    bootstrap: str = Field(
        default="127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How clients talk to the brokers: TLS, SASL, both or neither.",
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism, with a SASL_* security protocol."
    )
    sasl_username: str | None = Field(default=None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    ssl_cafile: str | None = Field(default=None, description="CA bundle to verify the brokers.")
    topic_suffix: str = Field(
        default="",
        description="Appended to every topic name, to run isolated copies on one broker (tests).",
    )
    fetch_min_bytes: int = Field(
        default=16384,
        ge=1,
        description="What a busy consumer's fetch waits to gather (up to "
        "`fetch_max_wait_ms`): fewer, fuller fetches cost the broker far less CPU under load. "
        "A consumer that fetched nothing for a second long-polls instead (the broker answers "
        "with the first byte, or after 500 ms) until records come again.",
    )
    fetch_max_wait_ms: int = Field(
        default=20,
        ge=0,
        description="The longest the broker holds a busy consumer's fetch for "
        "`fetch_min_bytes`: the most a lull between records adds to each hop's latency.",
    )

    def topic(self, topic: Topic | str) -> str:
        """The name of a platform topic on this deployment."""
        return f"{topic}{self.topic_suffix}"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments shared by every aiokafka client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return options


# The local stack's PostgreSQL (`make up`): where a service and a tool look when nothing is set.
LOCAL_POSTGRES_PORT = 55432
LOCAL_POSTGRES_URL = f"postgresql://flowcase@127.0.0.1:{LOCAL_POSTGRES_PORT}/postgres"


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWCASE_DATABASE_", extra="ignore")

    @classmethod
    def of_service(cls, service: str) -> DatabaseSettings:
        """The settings a command-line tool of SERVICE uses: FLOWCASE_DATABASE_URL when set, else
        that service's own database on the local stack (`flowcase_<service>`, on
        FLOWCASE_POSTGRES_PORT), where `make up` keeps it.

        A tool run beside the local stack must find the service's data the way the service does;
        the generic default (the server's `postgres` database) holds none of it, and a check
        that reads nothing there would pass."""
        settings = cls()
        if "url" in settings.model_fields_set:
            return settings
        port = os.environ.get("FLOWCASE_POSTGRES_PORT", str(LOCAL_POSTGRES_PORT))
        return cls(url=f"postgresql://flowcase@127.0.0.1:{port}/flowcase_{service}")

    url: str = Field(
        default=LOCAL_POSTGRES_URL,
        description="PostgreSQL DSN of this service's own database.",
    )
