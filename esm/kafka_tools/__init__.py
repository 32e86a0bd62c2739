"""Kafka for development from the command line, so the Quick start needs nothing but esm:
`esm broker` (the bundled broker in the foreground), `esm topic create` and `esm produce`.

Each command module is imported only when its command runs.
"""

# A development broker answers at once: no answer within this long means none is running there.
CONNECT_TIMEOUT_S = 5.0


def error_text(error: Exception) -> str:
    """Why a Kafka call failed, in one line: kafka-python's class name is often most of it."""
    text = str(error)
    if "Unable to bootstrap" in text:
        return (
            f"no broker answered within {CONNECT_TIMEOUT_S:.0f} s (is `esm broker` or Kafka running there?)"
        )
    kind = type(error).__name__
    return text if text.startswith(kind) else f"{kind}: {text}" if text else kind
