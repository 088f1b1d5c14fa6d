"""`python -m flowcase.case`: the case service, configured from the environment."""

from __future__ import annotations

import asyncio
import sys

from flowcase.case.composition import build_service
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime import HttpSettings, serve
from flowcase.runtime.telemetry import configure_logging, configure_tracing


async def main() -> int:
    http = HttpSettings()
    service = await build_service(kafka=KafkaSettings(), database=DatabaseSettings(), http=http)
    try:
        return await serve(service.app, http, service.workers)
    finally:
        await service.close()


if __name__ == "__main__":
    configure_logging()
    configure_tracing("flowcase-case")
    sys.exit(asyncio.run(main()))
