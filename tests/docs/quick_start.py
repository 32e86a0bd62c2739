"""The README's Quick start as steps a test can run: pure parsing, no processes.

The section's fenced blocks, in order:
- a `sh` block whose first line is `# every terminal: ...`: the set-up each terminal runs first;
- a block whose first line is `# NAME` with a file name (`# app.py`, `# esm.yaml`): a file to write;
- a `sh` block whose first line is `# terminal N...`: commands run in terminal N, the last one kept
  running when that line says "keeps running";
- a `text` block: lines the user should see by then, in any terminal; `<request id>`, `<uuid>`,
  `<time>` and `...` stand for what differs from run to run.
Other blocks (examples to read) are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SECTION = "## Quick start"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_FILE_HEADER = re.compile(r"# ([\w.-]+\.\w+)$")
_TERMINAL_HEADER = re.compile(r"# terminal (\d+)\b(.*)$")
_PLACEHOLDERS = {
    "<request id>": r"[0-9a-f-]{36}",
    "<uuid>": r"[0-9a-f-]{36}",
    "<time>": r"\d{4}-\d\d-\d\dT[\d:.]+Z",
    "...": r".*",
}
_PORT = re.compile(r"(?<=127\.0\.0\.1:)(\d+)|(?<=Port: )(\d+)")


@dataclass(frozen=True)
class Commands:
    terminal: int
    script: str
    keeps_running: bool


@dataclass(frozen=True)
class Expected:
    lines: tuple[str, ...]


@dataclass
class QuickStart:
    setup: str = ""
    files: dict[str, str] = field(default_factory=dict)
    steps: list[Commands | Expected] = field(default_factory=list)


def section(readme: str) -> str:
    """From `## Quick start` to the next heading of level 2 or 3."""
    start = readme.index(SECTION + "\n") + len(SECTION) + 1
    following = re.search(r"^#{2,3} ", readme[start:], re.MULTILINE)
    return readme[start : start + following.start()] if following else readme[start:]


def parse(text: str) -> QuickStart:
    quick_start = QuickStart()
    for match in _FENCE.finditer(text):
        language, body = match.group(1), match.group(2)
        first, _, rest = body.partition("\n")
        if language == "text":
            quick_start.steps.append(Expected(tuple(line for line in body.splitlines() if line.strip())))
        elif language == "sh" and first.startswith("# every terminal"):
            quick_start.setup = rest
        elif language == "sh" and (terminal := _TERMINAL_HEADER.match(first)):
            keeps_running = "keeps running" in terminal.group(2)
            quick_start.steps.append(Commands(int(terminal.group(1)), rest, keeps_running))
        elif file := _FILE_HEADER.match(first):
            quick_start.files[file.group(1)] = rest
    return quick_start


def fixed_ports(text: str) -> list[int]:
    """The ports the section fixes (`127.0.0.1:PORT`, `Port: PORT`), each once, in order."""
    found = [int(a or b) for a, b in _PORT.findall(text)]
    return list(dict.fromkeys(found))


def with_ports(text: str, ports: dict[int, int]) -> str:
    return _PORT.sub(lambda match: str(ports.get(int(match.group(0)), match.group(0))), text)


def line_pattern(expected: str) -> re.Pattern[str]:
    """An expected line as a pattern for a whole output line: placeholders match what varies, and
    any run of spaces or tabs matches any other (tables align, logs use tabs)."""
    pieces = re.split(r"(<request id>|<uuid>|<time>|\.\.\.|\s+)", expected.strip())
    regex = "".join(
        _PLACEHOLDERS.get(piece) or (r"\s+" if piece.isspace() else re.escape(piece))
        for piece in pieces
        if piece
    )
    return re.compile(rf"^\s*{regex}\s*$")
