"""The case service's own Prometheus series.

The open cases are read from the case search read model, refreshed by the search projector in
the transaction of each batch it writes (and once as it starts), so a scrape costs nothing and
the figure matches the rows it counts.
"""

from __future__ import annotations

import asyncpg
from prometheus_client import Counter, Gauge

from flowcase.events.catalogue.case import CaseStatus

OPEN_CASES = Gauge(
    "flowcase_case_open_cases",
    "Cases not yet resolved or closed, by status.",
    ["status"],
)

ANCHORS_REFUSED = Counter(
    "flowcase_case_chain_anchors_refused",
    "Refusals to anchor a case whose newly stored events do not continue the chain from its "
    "anchored head (a chain changed in the database); its anchor stays.",
)

_UNFINISHED = tuple(
    s.value for s in CaseStatus if s not in (CaseStatus.RESOLVED, CaseStatus.CLOSED)
)

_OPEN = "SELECT status, count(*) AS open FROM case_search WHERE status = ANY($1) GROUP BY status"


async def refresh_open_cases(conn: asyncpg.Connection) -> None:
    counts = {row["status"]: row["open"] for row in await conn.fetch(_OPEN, list(_UNFINISHED))}
    for status in _UNFINISHED:
        OPEN_CASES.labels(status).set(counts.get(status, 0))
