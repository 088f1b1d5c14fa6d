"""`python -m flowcase.workflow`: the workflow API and its workers, until SIGTERM."""

from __future__ import annotations

import asyncio
import sys

from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime import HttpSettings, serve
from flowcase.runtime.telemetry import configure_logging, configure_tracing
from flowcase.workflow.composition import build_service
from flowcase.workflow.settings import WorkflowSettings


async def main() -> int:
    http = HttpSettings()
    service = await build_service(KafkaSettings(), DatabaseSettings(), WorkflowSettings(), http)
    try:
        return await serve(service.app, http, service.workers)
    finally:
        await service.close()


if __name__ == "__main__":
    configure_logging()
    configure_tracing("flowcase-workflow")
    sys.exit(asyncio.run(main()))
