"""`esm replay`: re-drive the records kept in an on-failure destination through a function.

Read only: replay never deletes or modifies the destination, so a record can be replayed again
(and a failed replay leaves everything as it was).

- `describe`: pure: a failure record's condition and batch summary, for the report lines.
- `batch_items`: pure: the item identifiers of an invocation event (to read partial responses).
- `replayer`: one record's replay with retries, and the tally of a whole run (no I/O of its own).
- `command`: the composition root: config, invoker, destination reader, printing, exit codes.
"""

from esm.replay.command import replay_command

__all__ = ["replay_command"]
