"""The JWT replay cache shared by every replica, in Redis (used when ``CDS_REDIS_URL`` is set).

One Lua script per token, atomic on the server, so two replicas that receive the same token at
the same moment cannot both accept it:

1. evict the issuer's expired entries from its sorted set (member: the ``jti`` digest, score:
   when the entry expires) and refuse when the issuer's quota is still full: one issuer flooding
   the service fails closed for that issuer only;
2. ``SET <jti key> 1 NX EXAT <exp + leeway>``: the set-if-absent that decides replay, with the
   token's own expiry, so Redis drops the key by itself;
3. add the entry to the issuer's sorted set and give the set a TTL of the longest lifetime an
   accepted token can have (``exp`` is at most 5 minutes plus the leeway ahead, and the entry
   lives one leeway past ``exp``): an issuer that stops calling leaves nothing behind.

Both keys of one issuer carry the same hash tag (``{<issuer digest>}``), as a script touching two
keys needs on a Redis Cluster (the client here speaks to one endpoint). Keys hold digests only: no issuer URL or ``jti`` in Redis key names.

Redis errors and timeouts raise :class:`ReplayCacheUnavailable` (503): a token that cannot be
checked is refused rather than accepted.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from cds_service.errors import ReplayCacheUnavailable

logger = logging.getLogger(__name__)

# KEYS[1] the jti key, KEYS[2] the issuer's sorted set.
# ARGV[1] expiry (unix s), ARGV[2] now (unix s), ARGV[3] quota, ARGV[4] set TTL (s), ARGV[5] member.
# Returns 0 recorded, 1 replay, 2 the issuer's quota is full.
SEEN_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 2 end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EXAT', ARGV[1]) then return 1 end
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 0
"""
RECORDED, REPLAYED, FULL = 0, 1, 2


def _digest(value: str, chars: int = 64) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:chars]


class RedisReplayCache:
    """:class:`~cds_service.api.replay.ReplayCache` on a shared Redis."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        max_per_issuer: int,
        leeway_s: int,
        max_exp_ahead_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max_per_issuer = max_per_issuer
        self._leeway_s = leeway_s
        # The issuer set outlives every entry in it: exp <= now + ahead + leeway, entry + leeway.
        self._set_ttl_s = max_exp_ahead_s + 2 * leeway_s + 2
        self._clock = clock
        self._script = redis.register_script(SEEN_SCRIPT)

    def keys(self, iss: str, jti: str) -> tuple[str, str]:
        """The jti key and the issuer's sorted-set key (hash-tagged alike for Redis Cluster)."""
        tag = f"{self._prefix}replay:{{{_digest(iss, 32)}}}"
        return f"{tag}:jti:{_digest(jti)}", f"{tag}:issuer"

    async def seen(self, iss: str, jti: str, exp: int) -> bool:
        jti_key, issuer_key = self.keys(iss, jti)
        # One second past exp + leeway: _check_times still accepts the token at that instant.
        expires_at = exp + self._leeway_s + 1
        now = math.floor(self._clock())
        args: list[str | int] = [
            expires_at,
            now,
            self._max_per_issuer,
            self._set_ttl_s,
            _digest(jti),
        ]
        try:
            result = await self._script(keys=[jti_key, issuer_key], args=args)
        except (RedisError, OSError) as error:
            logger.error(
                "replay cache unavailable: token refused with 503",
                extra={"component": "redis", "error_type": type(error).__name__},
            )
            raise ReplayCacheUnavailable() from None
        if result == FULL:
            logger.warning("replay cache full for issuer", extra={"iss": iss})
        return bool(result != RECORDED)
