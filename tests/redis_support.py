"""Redis fixture: the server on 127.0.0.1:6379, a key prefix of its own per test, cleaned up.

Skipped with the reason when Redis is unreachable, failed instead when ``CI=true``. Other test
runs share this server: every key and the pub/sub channel carry a unique ``cds-test-<uuid>:``
prefix, and the keys under it are deleted after the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from redis.exceptions import RedisError

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@dataclass(frozen=True)
class RedisTarget:
    url: str
    prefix: str
    port: int = REDIS_PORT


@pytest.fixture
def redis_target() -> Iterator[RedisTarget]:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        client.close()
        reason = (
            f"Redis unreachable at {REDIS_HOST}:{REDIS_PORT} ({type(exc).__name__}); "
            "start it to run the shared replay cache and snooze invalidation cases"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}. CI=true: Redis cases must not be skipped")
        pytest.skip(reason)
    target = RedisTarget(f"redis://{REDIS_HOST}:{REDIS_PORT}/0", f"cds-test-{uuid.uuid4().hex}:")
    try:
        yield target
    finally:
        keys = list(client.scan_iter(match=f"{target.prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
