"""Deterministic ids and fingerprints, without servers."""

from __future__ import annotations

from flowcase.intake import identity


def test_the_same_names_give_the_same_ids_and_different_names_differ() -> None:
    assert identity.request_id_for_submission("crm-1") == identity.request_id_for_submission(
        "crm-1"
    )
    assert identity.request_id_for_idempotency_key("a", "k") != (
        identity.request_id_for_idempotency_key("b", "k")
    )
    request_id = identity.request_id_for_record("t:0:5")
    assert request_id != identity.rejection_id_for_record("t:0:5")
    assert identity.event_id_for(request_id) == identity.event_id_for(request_id) != request_id


def test_a_fingerprint_ignores_key_order_but_not_values() -> None:
    assert identity.fingerprint({"a": 1, "b": {"c": 2, "d": 3}}) == identity.fingerprint(
        {"b": {"d": 3, "c": 2}, "a": 1}
    )
    assert identity.fingerprint({"a": 1}) != identity.fingerprint({"a": 1.5})
