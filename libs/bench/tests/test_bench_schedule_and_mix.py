"""The open-loop schedule and the request mix: pure, no servers."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from flowcase.bench.mix import Kind, Mix, plan_submissions
from flowcase.bench.schedule import RateStep, steps_of


def test_requests_are_due_at_fixed_intervals_from_the_start() -> None:
    step = RateStep(rate=200, seconds=3)
    offsets = step.offsets()
    assert step.count == len(offsets) == 600
    assert offsets[0] == 0
    assert offsets[1] == pytest.approx(0.005)
    assert offsets[-1] == pytest.approx(2.995)
    assert all(b - a == pytest.approx(0.005) for a, b in itertools.pairwise(offsets))


def test_a_fractional_rate_still_offers_its_share_within_the_window() -> None:
    step = RateStep(rate=2.5, seconds=3)
    assert step.count == 8  # due at 0, 0.4, …, 2.8: the last one before the window ends
    assert step.offsets()[-1] < step.seconds


def test_steps_keep_the_order_of_the_rates() -> None:
    assert [s.rate for s in steps_of([200, 50, 1000], 10)] == [200, 50, 1000]


@pytest.mark.parametrize(("rate", "seconds"), [(0, 1), (10, 0), (-5, 3)])
def test_a_step_needs_a_positive_rate_and_duration(rate: float, seconds: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateStep(rate, seconds)


def test_the_mix_parses_kind_weights_and_normalises_them() -> None:
    mix = Mix.parse("routine=8, approval=1.5,escalation=0.5")
    assert mix.shares() == {Kind.ROUTINE: 0.8, Kind.APPROVAL: 0.15, Kind.ESCALATION: 0.05}
    assert Mix.parse("routine=1").shares()[Kind.APPROVAL] == 0


@pytest.mark.parametrize("text", ["routine", "batch=5", "routine=80,approval", ""])
def test_a_malformed_mix_is_refused_with_its_part(text: str) -> None:
    with pytest.raises(ValueError, match="kind=weight"):
        Mix.parse(text)


def test_the_same_seed_plans_the_same_submissions() -> None:
    first = list(itertools.islice(plan_submissions(Mix(), seed=3, prefix="a"), 200))
    again = list(itertools.islice(plan_submissions(Mix(), seed=3, prefix="a"), 200))
    other = list(itertools.islice(plan_submissions(Mix(), seed=4, prefix="a"), 200))
    assert first == again
    assert [p.kind for p in first] != [p.kind for p in other]


def test_the_mix_is_followed_over_many_requests() -> None:
    planned = itertools.islice(plan_submissions(Mix(), seed=11, prefix="m"), 10_000)
    kinds = Counter(p.kind for p in planned)
    assert kinds[Kind.ROUTINE] / 10_000 == pytest.approx(0.80, abs=0.02)
    assert kinds[Kind.APPROVAL] / 10_000 == pytest.approx(0.15, abs=0.02)
    assert kinds[Kind.ESCALATION] / 10_000 == pytest.approx(0.05, abs=0.01)


def test_each_kind_is_built_for_the_outcome_it_must_reach() -> None:
    planned = list(itertools.islice(plan_submissions(Mix(), seed=5, prefix="k"), 2000))
    types = {kind: Counter(p.request_type for p in planned if p.kind is kind) for kind in Kind}
    assert set(types[Kind.ROUTINE]) == {"password_reset", "software_access"}
    assert set(types[Kind.APPROVAL]) == {"invoice_approval", "purchase_order"}
    assert set(types[Kind.ESCALATION]) == {"access_complaint", "software_access"}
    for p in planned:
        assert p.body["submission_id"] == p.submission_id
        if p.kind is Kind.ROUTINE and p.request_type == "software_access":
            assert "monthly_cost" not in p.body["payload"]  # standard software: no approval
        if p.request_type == "purchase_order":
            assert 5_000 <= p.body["payload"]["amount"] < 25_000  # one approval only
        if p.kind is Kind.ESCALATION and p.request_type == "software_access":
            assert p.body["payload"]["monthly_cost"] > 500  # matches no branch: a case
    assert len({p.submission_id for p in planned}) == len(planned)
