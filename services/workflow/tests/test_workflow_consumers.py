"""What the consumer retries instead of dead-lettering."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from flowcase.workflow.consumers import store_or_broker_away


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (OperationalError("connection refused"), True),
        (TimeoutError(), True),
        (IntegrityError("duplicate key"), False),
        (ValueError("bad payload"), False),
    ],
)
def test_an_outage_of_the_event_store_is_retried_not_dead_lettered(exc, transient) -> None:
    assert store_or_broker_away(exc) is transient
