"""Facts of the daemon <-> worker contract that both sides need beyond `proto/`.

Stdlib only: the worker, the daemon and the execution environments all import it.
"""

from __future__ import annotations

# Lambda's limit on a synchronous invocation's response: 6 MiB plus 100 bytes, as its error says
# ("... exceeded maximum allowed payload size (6291556 bytes).").
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"

# gRPC's own message limit on both sides, well above the 6 MB rule so that the rule decides and a
# transport limit is only ever hit by something that is not an esm worker.
GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Trailing metadata a worker sets with RESOURCE_EXHAUSTED when every execution environment is busy.
# gRPC uses RESOURCE_EXHAUSTED for its own message limits too: only this marker makes it a throttle.
BUSY_METADATA_KEY = "esm-busy"
BUSY_METADATA_VALUE = "all-environments-busy"


def response_too_large_message(size: int) -> str:
    """Lambda's errorMessage for a response over the limit."""
    return (
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
        f"({MAX_RESPONSE_BYTES} bytes)."
    )
