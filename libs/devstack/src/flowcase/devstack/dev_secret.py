"""The local stack's development token secret: random, made once per FLOWCASE_HOME.

The services the stack starts get it as FLOWCASE_AUTH_DEV_SECRET; `flowcase token` reads the
same file when that variable is unset, so a developer can mint a token right after `make up`.
It signs development tokens only: production validates tokens against an OIDC issuer's JWKS.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flowcase.runtime.auth import DEV_SECRET_FILE


def dev_secret(home: Path) -> str:
    """The secret under `home`, created (owner-only, mode 600) on first use."""
    path = home / DEV_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_EXCL: two starts racing both read the one secret the first wrote.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
