"""How many transactions each peer node may send per minute (the inbox's rate limit).

Kept in the process's memory, not the database: the check runs before any
storage work, on every transaction, and a node with several processes
accepts at most that many times the limit, which still bounds a peer that
floods.  A peer past its limit gets 429 with ``Retry-After``: NP/1 senders
wait it out for that peer only (``federation.runtime.worker``), so nothing
is lost, only paced.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class PeerThrottle:
    """A sliding one-minute window of accepted transactions per origin."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.accepted: dict[str, deque[float]] = {}

    def admit(self, origin: str) -> int | None:
        """Count a transaction from ``origin``; None if admitted, else seconds to wait."""
        now = self.clock()
        times = self.accepted.setdefault(origin, deque())
        while times and now - times[0] >= WINDOW_SECONDS:
            times.popleft()
        if len(times) >= self.per_minute:
            return max(1, math.ceil(WINDOW_SECONDS - (now - times[0])))
        times.append(now)
        return None
