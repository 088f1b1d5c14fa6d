"""The container's health check: GET /healthz (or /readyz with --ready) on the service's own port.

It reads the port and interface from the service's own HTTP settings, so it follows
FLOWCASE_HTTP_PORT/FLOWCASE_HTTP_HOST wherever they are set. The image's HEALTHCHECK asks for
liveness; docker-compose asks for readiness, so `depends_on: service_healthy` and
`docker compose up --wait` mean "ready to serve".
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from flowcase.runtime.settings import HttpSettings

ANY_INTERFACE = {"0.0.0.0", "::", ""}


def main(argv: list[str]) -> int:
    settings = HttpSettings()
    host = "127.0.0.1" if settings.host in ANY_INTERFACE else settings.host
    path = "/readyz" if "--ready" in argv else "/healthz"
    try:
        with urllib.request.urlopen(f"http://{host}:{settings.port}{path}", timeout=2) as answer:
            return 0 if answer.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
