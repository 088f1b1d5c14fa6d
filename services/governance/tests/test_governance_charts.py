"""The charts' y axes end on round figures of the unit the values are read in."""

from __future__ import annotations

import pytest

from flowcase.governance.charts import axis_top

HOUR = 3600.0


@pytest.mark.parametrize(
    ("values", "floor", "unit", "cap", "top"),
    [
        ([0.4, 0.38], 0.2, 1.0, 1.0, 0.5),  # 44 % before
        ([0.8], 0.2, 1.0, 1.0, 1.0),  # 88 % before
        ([1.0, 0.9], 0.2, 1.0, 1.0, 1.0),  # 110 % before: a share never tops 100 %
        ([0.1], 0.2, 1.0, 1.0, 0.25),  # the 20 % line alone: 22 % before
        ([12.5, None, 3.0], 0.0, 1.0, None, 20.0),  # overrides per 100: 13.8 before
        ([3.9 * HOUR, 2 * HOUR], 0.0, HOUR, None, 5 * HOUR),  # 4.3 h before
        ([8 * HOUR], 0.0, HOUR, None, 10 * HOUR),  # 8.8 h before
        ([None, None], 0.0, 1.0, None, 1.0),  # nothing to draw: one unit
        ([9.9], 0.0, 1.0, None, 20.0),
        ([0.0049], 0.0, 1.0, None, 0.01),
    ],
)
def test_the_top_is_a_round_number_of_units_just_above_the_values(
    values: list[float | None], floor: float, unit: float, cap: float | None, top: float
) -> None:
    assert axis_top(values, floor, lambda peak: unit, cap) == pytest.approx(top)
