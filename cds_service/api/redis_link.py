"""The Redis connection for state shared by replicas (replay cache, snooze invalidation).

Timeouts are short (``CDS_REDIS_TIMEOUT_S``, 0.5 s for connect and for each read) and redis-py's
automatic retries are off: a dead Redis must cost a hook call half a second and a 503, not
several seconds of retries. The client connects lazily, so the service starts while Redis is
down and recovers by itself when it is back.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def connect(url: str, timeout_s: float) -> Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``); nothing is sent yet."""
    return Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


async def ping(redis: Redis) -> bool:
    """Whether Redis answers now (within the client's timeouts)."""
    try:
        return bool(await redis.ping())
    except (RedisError, OSError) as error:
        logger.warning(
            "redis unreachable", extra={"component": "redis", "error_type": type(error).__name__}
        )
        return False
