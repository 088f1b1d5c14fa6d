"""Pure rules of the API: the version a command is based on, and the opaque search cursor."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from flowcase.case.case_search import InvalidCursor, decode_cursor, encode_cursor
from flowcase.case.http_api import expected_version
from flowcase.case.http_models import Claim
from flowcase.runtime import ProblemError


@pytest.mark.parametrize(
    ("if_match", "in_body", "expected"),
    [('"4"', None, 4), ('W/"4"', None, 4), ("4", None, 4), (None, 4, 4), ('"4"', 4, 4)],
)
def test_the_version_comes_from_if_match_or_the_body(
    if_match: str | None, in_body: int | None, expected: int
) -> None:
    assert expected_version(if_match, Claim(expected_version=in_body)) == expected


@pytest.mark.parametrize(
    ("if_match", "in_body", "field"),
    [
        (None, None, "expected_version"),
        ('"4"', 5, "expected_version"),
        ("*", None, "header.If-Match"),
        ('"0"', None, "header.If-Match"),
    ],
)
def test_a_missing_unclear_or_contradictory_version_is_422(
    if_match: str | None, in_body: int | None, field: str
) -> None:
    with pytest.raises(ProblemError) as raised:
        expected_version(if_match, Claim(expected_version=in_body))
    assert raised.value.problem.status == 422
    assert [e.field for e in raised.value.problem.errors] == [field]


def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    opened_at, case_id = datetime(2026, 11, 24, 9, 15, 0, 123456, tzinfo=UTC), uuid4()
    assert decode_cursor(encode_cursor(opened_at, case_id)) == (opened_at, case_id)
    for forged in ("not-a-cursor", "", encode_cursor(opened_at, case_id)[:-3]):
        with pytest.raises(InvalidCursor):
            decode_cursor(forged)
