"""Deterministic identities: the same submission always gets the same request and event ids.

A publish retried after a crash (between the record of a decision and its commit) then carries the
ids of the first attempt, and consumers, which deduplicate by event id and request id, see one
request.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from uuid import UUID, uuid5

_NAMESPACE = UUID("6f3f1c8e-3c1a-4f57-9a55-8e0d2f6b7c41")


def request_id_for_submission(submission_id: str) -> UUID:
    """An upstream system's own id names one request, whichever channel it came through."""
    return uuid5(_NAMESPACE, f"submission:{submission_id}")


def request_id_for_idempotency_key(requester: str, key: str) -> UUID:
    return uuid5(_NAMESPACE, f"idempotency-key:{requester}:{key}")


def request_id_for_record(position: str) -> UUID:
    """A raw record without a submission id is named by where it sits on its topic."""
    return uuid5(_NAMESPACE, f"record:{position}")


def rejection_id_for_record(position: str) -> UUID:
    return uuid5(_NAMESPACE, f"rejection:{position}")


def event_id_for(entity_id: UUID) -> UUID:
    """The id of the one event intake publishes about a request or a rejection."""
    return uuid5(_NAMESPACE, f"event:{entity_id}")


def fingerprint(document: dict[str, Any]) -> str:
    """A digest of a JSON document that ignores key order and whitespace."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
