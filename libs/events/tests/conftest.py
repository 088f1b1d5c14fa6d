from __future__ import annotations

from uuid import UUID

import pytest

from flowcase.events import Envelope
from flowcase.events.catalogue.base import example_payloads


@pytest.fixture
def example_envelopes() -> list[Envelope]:
    """One envelope per catalogued event type, built from the catalogue's own examples."""
    envelopes = []
    for payload in example_payloads():
        request_id = getattr(payload, "request_id", None)
        envelopes.append(
            Envelope.wrap(
                payload,
                source="test",
                request_id=UUID(str(request_id)) if request_id else None,
                actor="agent-42" if payload.event_type.startswith("case.") else None,
            )
        )
    return envelopes
