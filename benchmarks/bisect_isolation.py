"""How many invocations BisectBatchOnFunctionError takes to isolate one bad record.

    .venv/bin/python benchmarks/bisect_isolation.py [--batch 1000] [--retries 2]

Drives esm's failure policy (esm/failures.py, the code the shard consumer follows) over a batch
with one record that always fails, for every position of that record, and reports the
invocations needed until every good record is checkpointed and the bad one is sent to the
destination: min / median / max against the goal 2 x log2(batch) + retries. The count is
exact, not a timing: the engine makes these invocations, in this order.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics

from esm.dispatch.outcomes import FunctionError, InvokeOutcome, OutcomeKind
from esm.shard.batch_response import SUCCEEDED
from esm.shard.failures import DecisionKind, FailurePolicy, WorkItem

ERROR = InvokeOutcome(OutcomeKind.FUNCTION_ERROR, error=FunctionError("ValueError", "bad record"))
OK = InvokeOutcome.success(b"null")


def invocations_to_isolate(policy: FailurePolicy, size: int, bad: int) -> int:
    items = [WorkItem(0, size)]
    count = 0
    discarded: list[int] = []
    while items:
        item = items[0]
        count += 1
        outcome = ERROR if item.start <= bad < item.end else OK
        decision = policy.decide(item, outcome, 0.0, 0.0, SUCCEEDED, rand=lambda: 0.5)
        if decision.kind is DecisionKind.SPLIT:
            items[0:1] = list(decision.next_items)
        elif decision.kind is DecisionKind.RETRY:
            items[0] = decision.next_items[0]
        else:
            if decision.kind is DecisionKind.DISCARD:
                discarded.extend(range(decision.discard_from, item.end))
            items.pop(0)
    assert discarded == [bad], discarded
    return count


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--retries", type=int, default=2, help="MaximumRetryAttempts")
    args = parser.parse_args()
    policy = FailurePolicy(maximum_retry_attempts=args.retries, bisect_on_function_error=True)
    counts = [invocations_to_isolate(policy, args.batch, bad) for bad in range(args.batch)]
    goal = 2 * math.log2(args.batch) + args.retries
    report = {
        "batch": args.batch,
        "maximum_retry_attempts": args.retries,
        "min": min(counts),
        "median": statistics.median(counts),
        "max": max(counts),
        "goal": round(goal, 1),
    }
    print(json.dumps(report))
    print(
        f"batch {args.batch}, MaximumRetryAttempts {args.retries}: "
        f"{report['min']}-{report['max']} invocations "
        f"(median {report['median']}) to isolate one bad record; goal about {goal:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
