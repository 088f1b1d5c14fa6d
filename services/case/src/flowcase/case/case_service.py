"""The service layer: the case application's commands and reads, run off the event loop.

The `eventsourcing` application is synchronous (psycopg); every call goes through a thread
pool no larger than the application's connection pool, so a burst of requests queues for a
thread instead of for a connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.persistence import Tracking
from opentelemetry import trace

from flowcase.case.aggregate import Case, case_id_for_request
from flowcase.case.application import CaseApplication, Recorded
from flowcase.case.chain import ChainAnchor, ChainRecord, ChainReport, verify_chain
from flowcase.case.commands import CaseCommand
from flowcase.events.catalogue.workflow import EscalatedToCase

_tracer = trace.get_tracer("flowcase.case")

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class AuditTrail:
    records: list[ChainRecord]
    report: ChainReport


class CaseService:
    def __init__(self, application: CaseApplication, *, threads: int) -> None:
        self.application = application
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="case-app")

    async def call(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one application method (a command or a read) in the service's thread pool, in
        a span named for it (`case add_note`), with the case id when the call names one."""
        attributes: dict[str, str] = {}
        if args and isinstance(args[0], UUID):
            attributes["flowcase.case_id"] = str(args[0])
        if request_id := kwargs.get("request_id"):
            attributes["flowcase.request_id"] = str(request_id)
        with _tracer.start_as_current_span(
            f"case {method.__name__}", attributes=attributes
        ) as span:
            result = await self._run(method, *args, **kwargs)
            if isinstance(result, UUID):
                span.set_attribute("flowcase.case_id", str(result))
            return result

    async def execute(self, case_id: UUID, command: CaseCommand, *, actor: str) -> Recorded:
        """Run one command, in a span named for it (`case add_note`)."""
        with _tracer.start_as_current_span(
            f"case {command.command_name()}", attributes={"flowcase.case_id": str(case_id)}
        ):
            return await self._run(self.application.execute, case_id, command, actor=actor)

    async def open_from_escalation(self, escalation: EscalatedToCase, tracking: Tracking) -> UUID:
        """Open the escalation's case; `tracking` (the consumed message's position) commits with
        its events, so a redelivery changes nothing."""
        with _tracer.start_as_current_span(
            "case open_from_escalation",
            attributes={
                "flowcase.case_id": str(case_id_for_request(escalation.request_id)),
                "flowcase.request_id": str(escalation.request_id),
                "flowcase.process_type": escalation.request_type,
                "flowcase.step": escalation.step,
                "flowcase.escalation.reason_code": escalation.reason_code.value,
            },
        ):
            return await self._run(
                self.application.open_from_escalation, escalation, tracking=tracking
            )

    async def record_broken_promise(self, case_id: UUID, now: datetime) -> bool:
        return await self._run(self.application.record_broken_promise, case_id, now)

    async def get_case(self, case_id: UUID) -> Case:
        return await self.call(self.application.get_case, case_id)

    async def history(self, case_id: UUID) -> list[Case.Event]:
        return await self.call(self.application.history, case_id)

    async def audit(self, case_id: UUID, anchor: ChainAnchor | None) -> AuditTrail:
        """The stored trail, its chain verified (against the case's anchor, when it has one)."""
        records = await self.call(self.application.chain_records, case_id)
        return AuditTrail(records, verify_chain(case_id, records, anchor))

    async def verify(self, case_id: UUID, anchor: ChainAnchor | None) -> ChainReport:
        return (await self.audit(case_id, anchor)).report

    async def _run(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        # In the caller's context: the events are stored under its trace (and request id).
        context = contextvars.copy_context()
        return await loop.run_in_executor(
            self._executor, functools.partial(context.run, method, *args, **kwargs)
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.application.close()
