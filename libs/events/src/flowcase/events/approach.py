"""Which layer a process belongs on, from its figures: the article's rule, in one place.

"Exception rate above 20% or frequent manual overrides: the approach is probably wrong for the
work." Governance's advisor applies it to what happened; the workflow's what-if to what a
proposed definition would do. Over an assessment period (a few weeks of traffic, say):

1. Fewer than `min_volume` requests (30): no recommendation. One request more or less would
   move the exception rate by over 3 points, too coarse to place work against a 20% line.
2. Exception rate above `majority` (50%): **case**. Most requests leave the defined path or
   need a person to force them through: the work is judgment, the case record should carry it.
3. Exception rate above `threshold` (20%): **layered**. The workflow is wrong for this much of
   the work, yet a routine majority still follows it: keep workflow intake for the majority and
   escalate the significant minority to case.
4. Exception rate at most 20% but more than `override_limit` (20) overrides per 100 requests:
   **layered**. Few requests, but overridden again and again: that minority needs judgment the
   workflow cannot script, and should escalate to case instead of being forced through.
5. Otherwise (low exception rate, few overrides): **workflow**.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Approach(StrEnum):
    WORKFLOW = "workflow"
    CASE = "case"
    LAYERED = "layered"


@dataclass(frozen=True)
class AdvisorPolicy:
    min_volume: int = 30
    threshold: float = 0.20
    majority: float = 0.50
    override_limit: float = 20.0


def approach_for(
    volume: int,
    exception_rate: float | None,
    overrides_per_100: float | None,
    policy: AdvisorPolicy = AdvisorPolicy(),
) -> tuple[Approach | None, str]:
    """The approach the figures call for (None with too few requests), and why, in words."""
    rate, per_100 = exception_rate, overrides_per_100
    if volume < policy.min_volume or rate is None or per_100 is None:
        return None, f"{volume} requests; at least {policy.min_volume} are needed"
    figures = f"exception rate {rate:.0%}, {per_100:.0f} overrides per 100 requests"
    if rate > policy.majority:
        return Approach.CASE, f"{figures}: most requests need judgment"
    if rate > policy.threshold:
        return (
            Approach.LAYERED,
            f"{figures}: over {policy.threshold:.0%}, but a routine majority follows the path",
        )
    if per_100 > policy.override_limit:
        return (
            Approach.LAYERED,
            f"{figures}: overrides concentrate on a minority that needs judgment",
        )
    return Approach.WORKFLOW, f"{figures}: the defined path holds"
