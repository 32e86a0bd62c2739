"""Which shard leases this member should take next (KCL's LeaseTaker), as a pure function.

`LeaseTaker.plan(leases, me, members_alive, now)` returns the leases to try to take, each as
read, so the caller passes its token to `LeaseStore.take` as the expected token (a lease
changed meanwhile is simply not taken). The rules, in order:

1. Finished leases (checkpoint SHARD_END) need no owner: they are neither counted nor taken.
2. Fair share = ceil(unfinished leases / members), where members are `members_alive`, me, and
   every owner of an unexpired lease (it renews, so it is alive even if the caller's member
   list has not caught up). If I already hold (unexpired) my fair share, take nothing.
3. Take available leases first (unowned, released, or expired, including my own expired
   ones), up to what I still need, by shard id.
4. Only if no lease is available and I still hold fewer than my fair share: steal ONE lease
   from the member holding the most, and only if that member holds more than the fair share
   (ties: the smallest member id; the lease: its smallest shard id). One steal per round lets
   the others see the change before anyone steals again, so ownership does not flap.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence

from esm.ownership.leases import Lease


class LeaseTaker:
    def plan(
        self, leases: Sequence[Lease], me: str, members_alive: Collection[str], now: float
    ) -> list[Lease]:
        """The leases `me` should take at `now` (see the module docstring for the rules)."""
        live = sorted((lease for lease in leases if not lease.is_finished), key=lambda lease: lease.shard_id)
        if not live:
            return []
        held = Counter(lease.owner for lease in live if lease.owner is not None and not lease.is_expired(now))
        members = set(members_alive) | {me} | set(held)
        fair_share = math.ceil(len(live) / len(members))
        needed = fair_share - held[me]
        if needed <= 0:
            return []
        available = [lease for lease in live if lease.is_available(now)]
        if available:
            return available[:needed]
        return self._one_to_steal(live, held, me, fair_share, now)

    def _one_to_steal(
        self, live: Sequence[Lease], held: Counter[str], me: str, fair_share: int, now: float
    ) -> list[Lease]:
        others = [(count, owner) for owner, count in held.items() if owner != me]
        if not others:
            return []
        # The most leases first, then the smallest member id.
        most, victim = min(others, key=lambda entry: (-entry[0], entry[1]))
        if most <= fair_share:
            return []
        return [next(lease for lease in live if lease.owner == victim and not lease.is_expired(now))]
