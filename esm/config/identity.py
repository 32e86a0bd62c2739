"""Stable mapping UUIDs, so that a restart resumes the same consumer group and checkpoints."""

from __future__ import annotations

import uuid

# Fixed forever: changing it changes every derived UUID, which orphans consumer groups and checkpoints.
MAPPING_UUID_NAMESPACE = uuid.UUID("3f5d2a8e-6b1c-4e0f-9a47-2c8b1d6e9f30")


def derive_mapping_uuid(function_name: str, source_identity: str) -> str:
    """uuid5 of (function name, source): the same mapping gets the same UUID on every start."""
    return str(uuid.uuid5(MAPPING_UUID_NAMESPACE, f"{function_name}\n{source_identity}"))


def check_uuid(text: str) -> None:
    """A UUID in AWS's 8-4-4-4-12 form (it names the default consumer group); ValueError otherwise."""
    try:
        canonical = str(uuid.UUID(text))
    except ValueError:
        canonical = ""
    if canonical != text.lower():
        raise ValueError(f"expected a UUID such as '14e0db71-5d35-4eb5-b481-8945cf9d10c2', got {text!r}")
