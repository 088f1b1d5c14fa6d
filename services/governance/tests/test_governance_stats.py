import pytest

from flowcase.governance.stats import median, percentile, theil_sen_slope


@pytest.mark.parametrize(
    ("p", "expected"),
    # The textbook nearest-rank example: rank = ceil(p/100 * 5).
    [(0, 15), (5, 15), (30, 20), (40, 20), (50, 35), (95, 50), (100, 50)],
)
def test_percentile_is_nearest_rank(p, expected):
    assert percentile([35, 20, 15, 50, 40], p) == expected


def test_p95_of_twenty_values_is_the_nineteenth():
    assert percentile(list(range(1, 21)), 95) == 19


def test_median_of_an_even_count_is_the_lower_middle_value():
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.0


def test_no_values_have_no_percentile():
    assert percentile([], 50) is None
    assert median([]) is None


def test_a_percentile_outside_0_to_100_is_refused():
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_theil_sen_slope_of_a_line_is_its_slope():
    assert theil_sen_slope([(0, 5), (1, 7), (2, 9), (3, 11)]) == 2


def test_theil_sen_slope_shrugs_off_one_outlier():
    # Pairwise slopes: 1, 1, 1, 1 among the first four, and 96, 48.5, 32.33, 24 with the last;
    # the lower median of the ten is the fifth smallest: 1.
    assert theil_sen_slope([(0, 1), (1, 2), (2, 3), (3, 4), (4, 100)]) == 1


def test_theil_sen_needs_two_points_with_distinct_x():
    assert theil_sen_slope([(0, 1)]) is None
    assert theil_sen_slope([(1, 1), (1, 5)]) is None
