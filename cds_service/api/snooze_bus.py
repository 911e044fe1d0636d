"""Snooze invalidation across replicas: Redis publish/subscribe on ``<prefix>snooze``.

Each replica caches snooze lookups for a few seconds (api/card_log.py). When one replica stores
feedback it publishes an opaque scope string; every replica's subscriber (a background task of
the app's lifespan) hands it to the cache's invalidation entry point, so the others see the
snooze within a second instead of after their cache window.

Pub/sub delivers at most once, and only to subscribers connected at that moment: whenever the
subscriber (re)connects it drops the whole local cache, since messages may have been missed.
It reconnects with a backoff (0.1 s doubling up to 5 s). A failed publish is logged and
otherwise ignored: the feedback is stored, and the other replicas see it when their cache
window ends (the behaviour without Redis).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
POLL_S = 1.0  # longest wait for one message; an idle connection is pinged this often
SILENCE_LIMIT_S = 3 * POLL_S  # nothing heard (not even a pong) for this long: reconnect


class SnoozeBus:
    """Publishes snooze scopes and runs the subscriber that applies them to ``invalidate``.

    ``invalidate(scope)`` is called with the published scope for each message, and with None
    (drop everything) on every (re)subscription.
    """

    def __init__(self, redis: Redis, prefix: str, invalidate: Callable[[str | None], None]) -> None:
        self._redis = redis
        self.channel = f"{prefix}snooze"
        self._invalidate = invalidate
        self.connected = False  # subscribed now (for /readyz)
        self._was_connected = False

    async def publish(self, scope: str) -> None:
        """Tell every replica that snoozes in ``scope`` changed; best effort (logged on failure)."""
        try:
            await self._redis.publish(self.channel, scope.encode())
        except (RedisError, OSError) as error:
            logger.warning(
                "snooze invalidation not published: other replicas wait for their cache window",
                extra={"component": "redis", "error_type": type(error).__name__},
            )

    async def run(self) -> None:
        """Subscribe and apply messages until cancelled, reconnecting with a backoff."""
        delay = BACKOFF_FIRST_S
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as error:
                logger.warning(
                    "snooze subscriber disconnected: reconnecting",
                    extra={"component": "redis", "error_type": type(error).__name__},
                )
            if self._was_connected:  # a connection that worked: retry quickly
                delay, self._was_connected = BACKOFF_FIRST_S, False
            await anyio.sleep(delay)
            delay = min(BACKOFF_MAX_S, delay * 2)

    async def _listen(self) -> None:
        """One subscription, until its connection fails (raises RedisError or OSError)."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            # Messages sent while we were not subscribed are lost: start from an empty cache.
            self._invalidate(None)
            self.connected = self._was_connected = True
            logger.info("snooze subscriber connected", extra={"component": "redis"})
            heard = anyio.current_time()
            while True:
                message = await pubsub.get_message(timeout=POLL_S)
                now = anyio.current_time()
                if message is None:
                    # A connection that died silently (no RST) never raises on read: ping, and
                    # give up when not even the pong has come back for a few polls.
                    if now - heard > SILENCE_LIMIT_S:
                        raise RedisTimeoutError("no answer from redis")
                    await pubsub.ping()
                    continue
                heard = now
                data = message.get("data")
                if message.get("type") == "message" and isinstance(data, bytes):
                    self._invalidate(data.decode(errors="replace"))
        finally:
            self.connected = False
            with anyio.CancelScope(shield=True):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
