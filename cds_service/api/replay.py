"""JWT replay protection: ``(iss, jti)`` pairs remembered until the token expires.

Two implementations of :class:`ReplayCache`: :class:`MemoryReplayCache` (one process) and
:class:`~cds_service.api.redis_replay.RedisReplayCache` (shared by every replica, used when
``CDS_REDIS_URL`` is set). Both bound what they remember **per issuer**: an issuer that sends
more unexpired tokens than its quota gets its new tokens refused (fail closed: a forgotten
``jti`` could be replayed), while every other issuer keeps working. Only issuers that passed the
signature check reach the cache, so the number of issuers is bounded by the clients file.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)

DEFAULT_MAX_PER_ISSUER = 100_000


class ReplayCache(Protocol):
    """Remembers ``(iss, jti)`` pairs until the token expires."""

    async def seen(self, iss: str, jti: str, exp: int) -> bool:
        """True if the pair was already seen, or the issuer's quota is full; otherwise record it
        until ``exp`` (plus the leeway) and return False. Raises
        :class:`~cds_service.errors.ReplayCacheUnavailable` when the cache cannot answer."""
        ...


class MemoryReplayCache:
    """In-process replay cache, bounded to ``max_per_issuer`` entries per issuer; entries expire
    at ``exp + leeway_s`` and are evicted then (one heap over all issuers, popped on each call).

    One process only: with several replicas or workers use the Redis cache (``CDS_REDIS_URL``),
    or a token could be used once per process.
    """

    def __init__(
        self,
        *,
        max_per_issuer: int = DEFAULT_MAX_PER_ISSUER,
        leeway_s: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_per_issuer = max_per_issuer
        self._leeway_s = leeway_s
        self._clock = clock
        self._until: dict[str, dict[str, float]] = {}  # issuer -> jti -> expiry
        self._heap: list[tuple[float, str, str]] = []

    def __len__(self) -> int:
        self._purge(self._clock())
        return sum(len(jtis) for jtis in self._until.values())

    def count(self, iss: str) -> int:
        """Unexpired entries of one issuer."""
        self._purge(self._clock())
        return len(self._until.get(iss, ()))

    async def seen(self, iss: str, jti: str, exp: int) -> bool:
        self._purge(self._clock())
        jtis = self._until.setdefault(iss, {})
        if jti in jtis:
            return True
        if len(jtis) >= self._max_per_issuer:
            logger.warning("replay cache full for issuer", extra={"iss": iss, "count": len(jtis)})
            return True
        until = float(exp + self._leeway_s)
        jtis[jti] = until
        heapq.heappush(self._heap, (until, iss, jti))
        return False

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            until, iss, jti = heapq.heappop(self._heap)
            jtis = self._until.get(iss)
            if jtis is not None and jtis.get(jti) == until:
                del jtis[jti]
                if not jtis:
                    del self._until[iss]
