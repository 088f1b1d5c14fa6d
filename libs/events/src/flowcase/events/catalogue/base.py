"""The base of every catalogued event payload, and the registry from event type to model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar, cast

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, JsonValue

from flowcase.events.topics import Topic


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 or 9999-12-31T23:59-01:00: no UTC time exists for it.
        raise ValueError("out of the range of dates in UTC") from None


# Every timestamp in the contract is timezone-aware and normalised to UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

# The times an API takes from a caller: with a time zone and within years every store and
# computation handles (PostgreSQL's timestamptz and Python's datetime overflow at the calendar's
# ends, a deadline added to year 9999 overflows), so the calendar's ends are a 422, not a 500.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2999, 12, 31, tzinfo=UTC)


def within_years(value: datetime) -> datetime:
    if not EARLIEST_TIME <= value <= LATEST_TIME:
        raise ValueError("must be between 1970 and 2999 (UTC)")
    return value


BoundedDatetime = Annotated[UtcDatetime, AfterValidator(within_years)]


class EventPayload(BaseModel):
    """A catalogued payload. The class attributes say how it travels; the fields are the data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int]
    topic: ClassVar[Topic]
    # The payload field whose value keys the Kafka message, so one entity's events stay in order.
    key_field: ClassVar[str]

    @property
    def entity_key(self) -> str:
        return str(getattr(self, self.key_field))

    def carried_types(self) -> tuple[str, ...]:
        """The event types of the envelopes this payload carries, for a payload that is a group
        of events in one message (`flowcase.events.expand` reads them); none for the rest."""
        return ()


REGISTRY: dict[str, type[EventPayload]] = {}

T = TypeVar("T", bound=EventPayload)


def catalogued(
    event_type: str,
    *,
    topic: Topic,
    key: str,
    version: int = 1,
    examples: list[dict[str, Any]] | None = None,
) -> Callable[[type[T]], type[T]]:
    """Register a payload model under its event type (``<source>.<PastTenseName>``)."""

    def register(cls: type[T]) -> type[T]:
        if event_type in REGISTRY:
            raise ValueError(f"event type {event_type!r} is catalogued twice")
        if key not in cls.model_fields:
            raise ValueError(f"{cls.__name__}: key field {key!r} is not a field")
        cls.event_type = event_type
        cls.schema_version = version
        cls.topic = topic
        cls.key_field = key
        if examples:
            cls.model_config["json_schema_extra"] = {"examples": cast(list[JsonValue], examples)}
            cls.model_rebuild(force=True)
        REGISTRY[event_type] = cls
        return cls

    return register


def examples_of(model: type[EventPayload]) -> list[dict[str, Any]]:
    extra = model.model_config.get("json_schema_extra")
    return list(extra.get("examples", [])) if isinstance(extra, dict) else []  # type: ignore[arg-type]


def example_payloads() -> list[EventPayload]:
    """The first published example of every catalogued event type, in event-type order."""
    return [model.model_validate(examples_of(model)[0]) for _, model in sorted(REGISTRY.items())]
