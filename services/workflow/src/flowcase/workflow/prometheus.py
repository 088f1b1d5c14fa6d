"""The workflow service's own Prometheus series, read from its instance list (the read model).

Refreshed by the projection in the transaction of each batch it writes (and once as it starts),
so a scrape costs nothing and the figure is never ahead of or behind the rows it counts.
"""

from __future__ import annotations

import asyncpg
from prometheus_client import Gauge

PENDING_APPROVALS = Gauge(
    "flowcase_workflow_pending_approvals",
    "Running workflow instances waiting on a person's approval.",
    ["request_type"],
)

_PENDING = """
SELECT request_type, count(*) AS pending FROM workflow_instances
WHERE status = 'running' AND current_kind = 'approval' GROUP BY request_type
"""


_reported: set[str] = set()


async def refresh_pending_approvals(conn: asyncpg.Connection) -> None:
    counts = {row["request_type"]: row["pending"] for row in await conn.fetch(_PENDING)}
    # A request type whose last approval was decided drops out of the query: it reads 0.
    for request_type in _reported - counts.keys():
        PENDING_APPROVALS.labels(request_type).set(0)
    for request_type, pending in counts.items():
        PENDING_APPROVALS.labels(request_type).set(pending)
    _reported.update(counts)
