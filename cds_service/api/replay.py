"""JWT replay protection: ``(iss, jti)`` pairs remembered until the token expires."""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)


class ReplayCache(Protocol):
    """Remembers ``(iss, jti)`` pairs until the token expires."""

    def seen(self, iss: str, jti: str, exp: int) -> bool:
        """True if the pair was already seen; otherwise record it until ``exp`` and return False."""
        ...


class MemoryReplayCache:
    """In-process replay cache, bounded to ``max_entries``; entries expire at ``exp + leeway_s``.

    When full of unexpired entries it fails closed (reports every new token as seen) rather than
    forgetting tokens that could then be replayed. One process only: with several workers, plug
    in a shared implementation of :class:`ReplayCache`.
    """

    def __init__(
        self,
        *,
        max_entries: int = 100_000,
        leeway_s: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_entries = max_entries
        self._leeway_s = leeway_s
        self._clock = clock
        self._until: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, str, str]] = []

    def __len__(self) -> int:
        self._purge(self._clock())
        return len(self._until)

    def seen(self, iss: str, jti: str, exp: int) -> bool:
        self._purge(self._clock())
        if (iss, jti) in self._until:
            return True
        if len(self._until) >= self._max_entries:
            logger.warning("replay cache full", extra={"iss": iss, "count": len(self._until)})
            return True
        until = float(exp + self._leeway_s)
        self._until[(iss, jti)] = until
        heapq.heappush(self._heap, (until, iss, jti))
        return False

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            until, iss, jti = heapq.heappop(self._heap)
            if self._until.get((iss, jti)) == until:
                del self._until[(iss, jti)]
