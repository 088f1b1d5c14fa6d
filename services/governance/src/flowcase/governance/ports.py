"""What governance's service layer needs from the world: where the facts are kept (a protocol
the PostgreSQL `repository.FactRepository` implements; the fold in memory stands in for it in
the core's tests)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from uuid import UUID

from flowcase.governance.facts import Facts
from flowcase.governance.windows import Period


class FactBatch(Protocol):
    """One import's batch, stored at once or not at all."""

    async def new(self, event_ids: Sequence[UUID]) -> set[UUID]:
        """Those of `event_ids` no import stored before, now recorded as imported."""
        ...

    async def save(self, facts: Facts) -> None: ...


class FactStore(Protocol):
    async def save(self, facts: Facts) -> None:
        """Merge facts into the store (every merge is order-free and idempotent)."""
        ...

    def import_batch(self) -> AbstractAsyncContextManager[FactBatch]: ...

    async def process_types(self) -> list[str]:
        """Every process type stated by a request or a case, sorted."""
        ...

    async def load(self, period: Period, process_type: str | None = None) -> Facts:
        """The facts the metrics of `period` need, for one process type or for every one."""
        ...
