"""Every published version of every process definition.

A running instance keeps the version it started with, so old versions stay available for as
long as the registry lives; publishing a new version only changes which one new requests get.
"""

from __future__ import annotations

from collections.abc import Iterable

from flowcase.workflow.definition import ProcessDefinition


class UnknownRequestType(LookupError):
    pass


class VersionConflict(ValueError):
    """A version number was published again with different content; a published version is
    immutable, since running instances depend on it."""


class DefinitionRegistry:
    def __init__(self, definitions: Iterable[ProcessDefinition] = ()) -> None:
        self._versions: dict[str, dict[int, ProcessDefinition]] = {}
        for definition in definitions:
            self.publish(definition)

    def publish(self, definition: ProcessDefinition) -> None:
        versions = self._versions.setdefault(definition.request_type, {})
        existing = versions.get(definition.version)
        if existing is not None and existing != definition:
            raise VersionConflict(
                f"{definition.request_type} v{definition.version} is already published with "
                "other content; publish a new version instead"
            )
        versions[definition.version] = definition

    def current(self, request_type: str) -> ProcessDefinition:
        versions = self._versions_of(request_type)
        return versions[max(versions)]

    def get(self, request_type: str, version: int) -> ProcessDefinition:
        try:
            return self._versions_of(request_type)[version]
        except KeyError:
            raise UnknownRequestType(f"{request_type} has no version {version}") from None

    def request_types(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, request_type: str) -> list[int]:
        return sorted(self._versions_of(request_type))

    def _versions_of(self, request_type: str) -> dict[int, ProcessDefinition]:
        try:
            return self._versions[request_type]
        except KeyError:
            raise UnknownRequestType(f"no process serves request type {request_type!r}") from None
