"""The token a `flowcase` command calls a service with (commands only: no service loads this)."""

from __future__ import annotations

import os

from pydantic import SecretStr

from flowcase.runtime.auth import Role, local_dev_secret, mint_token
from flowcase.runtime.settings import AuthSettings


def command_token(subject: str) -> str | None:
    """FLOWCASE_TOKEN, or else an administrator's token minted with the development secret
    (FLOWCASE_AUTH_DEV_SECRET or the local stack's) under `subject`, or none."""
    if token := os.environ.get("FLOWCASE_TOKEN"):
        return token
    settings = AuthSettings()
    if settings.dev_secret is None and (secret := local_dev_secret()) is not None:
        settings = settings.model_copy(update={"dev_secret": SecretStr(secret)})
    if settings.dev_secret is None:
        return None
    return mint_token(settings, subject=subject, roles=[Role.ADMIN])
