"""A mapping's settings for what the failure policy does not decide itself (both sources)."""

from __future__ import annotations

from dataclasses import dataclass, field

from esm.destinations import Destination
from esm.filtering import RecordFilter, compile_filters


@dataclass(frozen=True)
class FailureHandling:
    record_filter: RecordFilter = field(default_factory=lambda: compile_filters([]))
    report_batch_item_failures: bool = False
    destination: Destination | None = None
    function_arn: str = ""
    include_payload: bool = True
