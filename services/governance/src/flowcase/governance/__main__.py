"""`python -m flowcase.governance`: the metrics API, the dashboard and the projection worker."""

from __future__ import annotations

import asyncio
import sys

from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.governance.service import build_service
from flowcase.runtime import HttpSettings, serve
from flowcase.runtime.telemetry import configure_logging, configure_tracing


async def main() -> int:
    http = HttpSettings()
    service = await build_service(KafkaSettings(), DatabaseSettings(), http)
    try:
        return await serve(service.app, http, service.workers)
    finally:
        await service.close()


if __name__ == "__main__":
    configure_logging()
    configure_tracing("flowcase-governance")
    sys.exit(asyncio.run(main()))
