"""Flowcase governance: per process type, whether the work fits the layer it runs on.

The pure core, free of Kafka, HTTP and SQL: `project`/`fold` turn catalogue events into facts,
`measure`/`series` compute the metrics of a process type over windows of event time,
`resolution_drift` tests the resolution-time trend, and `advise` recommends an approach.
The formulas are documented in docs/governance-metrics.md.
"""

from flowcase.governance.advisor import Advice, AdvisorPolicy, Approach, advise
from flowcase.governance.drift import Drift, DriftPolicy, Trend, detect_drift, resolution_drift
from flowcase.governance.facts import (
    AuditKind,
    AuditRecord,
    CaseFact,
    Fact,
    Facts,
    First,
    Missing,
    OverrideFact,
    RequestFact,
    StepFact,
)
from flowcase.governance.metrics import (
    AuditGap,
    AuditGaps,
    ProcessMetrics,
    Resolution,
    RuleOverrides,
    StepMetrics,
    measure,
    process_types,
    series,
)
from flowcase.governance.projector import fold, project
from flowcase.governance.windows import Granularity, Period, window_of, windows

__all__ = [
    "Advice",
    "AdvisorPolicy",
    "Approach",
    "AuditGap",
    "AuditGaps",
    "AuditKind",
    "AuditRecord",
    "CaseFact",
    "Drift",
    "DriftPolicy",
    "Fact",
    "Facts",
    "First",
    "Granularity",
    "Missing",
    "OverrideFact",
    "Period",
    "ProcessMetrics",
    "RequestFact",
    "Resolution",
    "RuleOverrides",
    "StepFact",
    "StepMetrics",
    "Trend",
    "advise",
    "detect_drift",
    "fold",
    "measure",
    "process_types",
    "project",
    "resolution_drift",
    "series",
    "window_of",
    "windows",
]
