"""Event source mappings created through the control API (esm.control), kept in the store so that
every daemon sharing it runs them.

A stored mapping is its document (the mapping's AWS fields, as validated when it was written),
its state (Lambda's: Creating, Enabled, Enabling, Updating, Disabling, Disabled, Deleting), why
it is in that state, when it last changed, and a revision that goes up on every write. Writes are
compare-and-set on the revision, so two writers never both win. The registry's `generation` goes
up on every change of any mapping: a poller reads it often and the mappings only when it moved.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredMapping:
    uuid: str
    document: dict[str, Any]
    state: str
    state_reason: str
    last_modified: float
    revision: int = 0


class MappingRegistry(Protocol):
    async def create(self, mapping: StoredMapping) -> StoredMapping | None:
        """Stores a new mapping at revision 1; None when its UUID is taken."""
        ...

    async def get(self, uuid: str) -> StoredMapping | None: ...

    async def list(self) -> builtins.list[StoredMapping]:
        """Every stored mapping, by UUID."""
        ...

    async def replace(self, mapping: StoredMapping) -> StoredMapping | None:
        """Writes `mapping` if the stored revision is still `mapping.revision`; returns it at the
        next revision, or None when it changed meanwhile or is gone."""
        ...

    async def delete(self, uuid: str, revision: int) -> bool:
        """Removes the mapping if it is still at `revision`."""
        ...

    async def generation(self) -> int:
        """A number that changes whenever any mapping does."""
        ...
