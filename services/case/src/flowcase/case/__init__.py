"""The case service's core: the case aggregate, its application and its audit chain (no I/O)."""

from flowcase.case.aggregate import Case, case_id_for_request
from flowcase.case.application import SNAPSHOT_INTERVAL, CaseApplication, Recorded
from flowcase.case.catalogue_mapping import Publication, to_catalogue
from flowcase.case.chain import BreakKind, ChainBreak, ChainRecord, ChainReport, verify_chain
from flowcase.case.errors import (
    BrokenRecord,
    CaseClosed,
    CaseConflict,
    CaseError,
    CaseNotFound,
    IllegalTransition,
    InvalidCommand,
    InvalidField,
    MissingJustification,
    StaleVersion,
    TaskAlreadyCompleted,
    UnknownReference,
)

__all__ = [
    "SNAPSHOT_INTERVAL",
    "BreakKind",
    "BrokenRecord",
    "Case",
    "CaseApplication",
    "CaseClosed",
    "CaseConflict",
    "CaseError",
    "CaseNotFound",
    "ChainBreak",
    "ChainRecord",
    "ChainReport",
    "IllegalTransition",
    "InvalidCommand",
    "InvalidField",
    "MissingJustification",
    "Publication",
    "Recorded",
    "StaleVersion",
    "TaskAlreadyCompleted",
    "UnknownReference",
    "case_id_for_request",
    "to_catalogue",
    "verify_chain",
]
