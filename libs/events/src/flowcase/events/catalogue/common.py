"""Vocabulary shared by more than one part of the catalogue."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Outcome(StrEnum):
    """The one terminal outcome every accepted request reaches (DESIGN.md, "Outcomes")."""

    COMPLETED = "completed"
    REJECTED = "rejected"
    RESOLVED_BY_CASE = "resolved_by_case"


class Reason(BaseModel):
    """Why a value was refused: the field (a JSON-pointer-like dotted path) and the reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="Dotted path of the offending field; empty for the whole body.")
    reason: str
