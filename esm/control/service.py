"""Lambda's event source mapping operations on esm: create, read, list, update and delete mappings
kept in the store's registry (every daemon sharing the store runs them, esm.mappings.live), and
read the functions and the mappings of the config file.

States move as Lambda's do: a write leaves the mapping Creating, Updating, Enabling, Disabling or
Deleting; the daemons' reconcilers (esm.mappings.live) move it on once applied (Enabled,
Disabled, or removed). Mappings of the config file are listed and read like the others, but
changing them is refused: the file is their source.
"""

from __future__ import annotations

import time
import uuid as uuids
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from esm.config import EsmConfig, EventSourceMappingConfig
from esm.config.arns import resolve_function_name
from esm.control.documents import (
    MappingView,
    configuration,
    create_document,
    function_arn,
    updated_document,
    validated,
)
from esm.control.errors import ApiError, conflict, in_use, invalid, not_found
from esm.stores.mappings import MappingRegistry, StoredMapping
from esm.stores.status import ShardStatusStore

USER_ACTION = "User action"
NO_RECORDS = "No records processed"
DEFAULT_MAX_ITEMS = 100
MAX_ITEMS = 10000
# States in which a mapping takes no change but waits for the one under way to finish.
_BUSY = {"Deleting"}


@dataclass(frozen=True)
class FileMappings:
    """The mappings of the config file: read-only through the API."""

    path: str
    mappings: Sequence[EventSourceMappingConfig]
    loaded_at: float


class ControlService:
    def __init__(
        self,
        config: EsmConfig,
        file: FileMappings,
        registry: MappingRegistry,
        status: ShardStatusStore,
        region: str,
        clock: Callable[[], float] = time.time,
        new_uuid: Callable[[], str] = lambda: str(uuids.uuid4()),
    ) -> None:
        self._config = config
        self._file = file
        self._registry = registry
        self._status = status
        self._region = region
        self._clock = clock
        self._new_uuid = new_uuid

    # -- event source mappings ---------------------------------------------------------------------

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._function(body.get("FunctionName"))
        document = create_document(body, self._new_uuid())
        mapping = validated(document)
        await self._check_unique(mapping)
        stored = StoredMapping(mapping.uuid, document, "Creating", USER_ACTION, self._clock())
        created = await self._registry.create(stored)
        if created is None:
            raise conflict(f"An event source mapping with UUID {mapping.uuid} already exists")
        return await self._answer(created)

    async def get(self, uuid: str) -> dict[str, Any]:
        file_mapping = self._file_mapping(uuid)
        if file_mapping is not None:
            return await self._answer_file(file_mapping)
        stored = await self._registry.get(uuid)
        if stored is None:
            raise _no_mapping(uuid)
        return await self._answer(stored)

    async def list(
        self,
        function_name: str | None,
        event_source_arn: str | None,
        marker: str | None,
        max_items: str | None,
    ) -> dict[str, Any]:
        name = self._function_filter(function_name)
        limit = _max_items(max_items)
        answers = [await self._answer_file(m) for m in self._file.mappings]
        answers += [await self._answer(stored) for stored in await self._registry.list()]
        chosen = [
            answer
            for answer in answers
            if (name is None or answer["FunctionArn"].endswith(f":function:{name}"))
            and (event_source_arn is None or answer.get("EventSourceArn") == event_source_arn)
        ]
        chosen.sort(key=lambda answer: str(answer["UUID"]))
        if marker:
            chosen = [answer for answer in chosen if str(answer["UUID"]) > marker]
        page: dict[str, Any] = {"EventSourceMappings": chosen[:limit]}
        if len(chosen) > limit:
            page["NextMarker"] = chosen[limit - 1]["UUID"]
        return page

    async def update(self, uuid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        stored = await self._changeable(uuid, "changed")
        changes = {key: value for key, value in body.items() if key != "UUID"}
        if "FunctionName" in changes:
            self._function(changes["FunctionName"])
            changes["FunctionName"] = resolve_function_name(str(changes["FunctionName"]))
        document = updated_document(stored.document, changes)
        mapping = validated(document)
        await self._check_unique(mapping)
        before = validated(stored.document)
        state = _state_for_update(before.enabled, mapping.enabled)
        return await self._write(stored, document, state)

    async def delete(self, uuid: str) -> dict[str, Any]:
        stored = await self._changeable(uuid, "deleted")
        return await self._write(stored, stored.document, "Deleting")

    async def _changeable(self, uuid: str, done: str) -> StoredMapping:
        """The stored mapping `uuid` if it may be changed now; Lambda's error otherwise."""
        self._refuse_file_mapping(uuid, done)
        stored = await self._registry.get(uuid)
        if stored is None:
            raise _no_mapping(uuid)
        if stored.state in _BUSY:
            raise in_use(f"The event source mapping {uuid} is {stored.state}: it cannot be {done} now")
        return stored

    async def _write(self, stored: StoredMapping, document: dict[str, Any], state: str) -> dict[str, Any]:
        written = await self._registry.replace(
            StoredMapping(stored.uuid, document, state, USER_ACTION, self._clock(), stored.revision)
        )
        if written is None:  # another request changed it between our read and our write
            raise ApiError(
                "TooManyRequestsException",
                f"The event source mapping {stored.uuid} changed meanwhile: try again",
            )
        return await self._answer(written)

    # -- functions ---------------------------------------------------------------------------------

    async def get_function(self, reference: str) -> dict[str, Any]:
        name = self._function(reference)
        function = self._config.function(name)
        answer: dict[str, Any] = {"Configuration": self._function_configuration(name)}
        if function.ReservedConcurrentExecutions is not None:
            answer["Concurrency"] = {"ReservedConcurrentExecutions": function.ReservedConcurrentExecutions}
        return answer

    async def list_functions(self, marker: str | None, max_items: str | None) -> dict[str, Any]:
        limit = _max_items(max_items, cap=50)
        names = sorted(function.FunctionName for function in self._config.Functions)
        if marker:
            names = [name for name in names if name > marker]
        page: dict[str, Any] = {"Functions": [self._function_configuration(name) for name in names[:limit]]}
        if len(names) > limit:
            page["NextMarker"] = names[limit - 1]
        return page

    def _function_configuration(self, name: str) -> dict[str, Any]:
        function = self._config.function(name)
        configuration: dict[str, Any] = {
            "FunctionName": name,
            "FunctionArn": function_arn(name, self._region),
            "Timeout": function.Timeout,
            "MemorySize": function.MemorySize,
            "Version": "$LATEST",
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Description": f"esm function served by {', '.join(function.Endpoints)}",
            "LastModified": _iso(self._file.loaded_at),
        }
        if function.Role:
            configuration["Role"] = function.Role
        return configuration

    # -- helpers -----------------------------------------------------------------------------------

    def _function(self, reference: object) -> str:
        """The configured function `reference` names; ResourceNotFoundException otherwise."""
        if not isinstance(reference, str) or not reference:
            raise invalid("FunctionName: is required")
        try:
            name = resolve_function_name(reference)
        except ValueError as err:
            raise invalid(f"FunctionName: {err}") from None
        if all(function.FunctionName != name for function in self._config.Functions):
            raise not_found(f"Function not found: {function_arn(name, self._region)}")
        return name

    def _function_filter(self, reference: str | None) -> str | None:
        if reference is None:
            return None
        try:
            return resolve_function_name(reference)
        except ValueError as err:
            raise invalid(f"FunctionName: {err}") from None

    async def _check_unique(self, mapping: EventSourceMappingConfig) -> None:
        """One mapping per function and event source, as Lambda has it."""
        others = [*self._file.mappings, *(validated(s.document) for s in await self._registry.list())]
        identity = (mapping.function_name, mapping.source.identity)
        for other in others:
            if other.uuid != mapping.uuid and (other.function_name, other.source.identity) == identity:
                source, function = _source_name(mapping), mapping.function_name
                raise conflict(
                    f'The event source arn (" {source} ") and function (" {function} ") provided mapping '
                    f"already exists. Please update or delete the existing mapping with UUID {other.uuid}"
                )

    def _file_mapping(self, uuid: str) -> EventSourceMappingConfig | None:
        return next((m for m in self._file.mappings if m.uuid == uuid), None)

    def _refuse_file_mapping(self, uuid: str, done: str) -> None:
        if self._file_mapping(uuid) is not None:
            raise conflict(
                f"The event source mapping {uuid} is defined in {self._file.path}: it cannot be {done} "
                f"through the API; change the file and restart esm"
            )

    async def _answer(self, stored: StoredMapping) -> dict[str, Any]:
        mapping = validated(stored.document)
        view = MappingView(
            stored.state, stored.state_reason, stored.last_modified, await self._last_result(mapping.uuid)
        )
        return configuration(mapping, view, self._region)

    async def _answer_file(self, mapping: EventSourceMappingConfig) -> dict[str, Any]:
        state = "Enabled" if mapping.enabled else "Disabled"
        reason = f"Defined in {self._file.path}"
        view = MappingView(state, reason, self._file.loaded_at, await self._last_result(mapping.uuid))
        return configuration(mapping, view, self._region)

    async def _last_result(self, uuid: str) -> str:
        """Lambda's LastProcessingResult from what the mapping's owners report: a problem of any
        shard first, else OK once a batch succeeded."""
        reports = await self._status.read(uuid, self._clock())
        results = [str(report.get("last_processing_result") or "") for report in reports.values()]
        problems = [result for result in results if result.startswith("PROBLEM")]
        if problems:
            return problems[0]
        return "OK" if "OK" in results else NO_RECORDS


def _state_for_update(was_enabled: bool, enabled: bool) -> str:
    if was_enabled == enabled:
        return "Updating"
    return "Enabling" if enabled else "Disabling"


def _no_mapping(uuid: str) -> ApiError:
    return not_found(
        f"The resource you requested does not exist. (Service: Lambda, Status Code: 404, UUID: {uuid})"
    )


def _source_name(mapping: EventSourceMappingConfig) -> str:
    return mapping.EventSourceArn or str(mapping.source.identity)


def _max_items(value: str | None, cap: int = MAX_ITEMS) -> int:
    if value is None:
        return min(DEFAULT_MAX_ITEMS, cap)
    if not value.isdigit() or not 1 <= int(value) <= MAX_ITEMS:
        raise invalid(f"MaxItems: must be between 1 and {MAX_ITEMS}, got {value!r}")
    return min(int(value), cap)


def _iso(epoch: float) -> str:
    """Lambda's function LastModified format: 2019-10-26T02:12:49.112+0000."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}+0000"
