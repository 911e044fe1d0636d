"""The feedback store as the routes see it: write-behind recording, cached snooze lookups, and
one view of whether storage is up.

Hook calls must not wait for the database, and a storage outage must not fail them:

* issued cards are queued and written in batches by one background task (one transaction per
  batch of at most ``BATCH`` cards, off the event loop), and before any read that depends on
  them (feedback, the order-hook repeat check, statistics). A batch that fails goes back to the
  front of the queue and is tried again after a backoff; writing is idempotent on the card uuid,
  so a batch that was in fact committed is harmless to write again.
* the queue is bounded (``max_pending`` cards plus the batch being written). When it is full the
  **oldest** cards are dropped, logged (at most every ``DROP_LOG_EVERY_S``) and counted: the newest
  are the ones the clinician is looking at now, which feedback and the order-sign repeat check
  will ask about next; feedback on old cards has mostly come in already.
* at shutdown the queue is flushed once more, backoff or not; what storage still refuses is
  logged as lost with its count (never patient data).
* one circuit breaker covers every storage access of this process: after a failure nothing is
  tried until the backoff (``flush_interval_s`` doubling up to ``retry_max_s``) has passed, and
  then one attempt at a time (a flush, a ping, feedback) whose result closes the breaker or
  opens it again. Hook calls never make that attempt: until storage has answered again their
  snooze lookups answer empty at once (cards are shown rather than held up) and the repeat
  check looks at the queued cards only, so a database that drops packets does not hold every
  call for a connect timeout. Feedback and statistics get ``StorageUnavailable`` (503,
  ``Retry-After``) meanwhile. The background task makes the attempts: the queued cards, or a
  ping when nothing is queued.
* snooze lookups (topics and suggestions silenced for a patient) take one thread hop and are
  cached for a few seconds per scope (client, tenant and patient key: tenancy.SnoozeScope) and
  service; feedback received by this process drops the entries of the scopes it touched
  (``invalidate_scope``, which is also the entry point for invalidations from other replicas).
  Past that time a cached answer is still served once more while the background task reads it
  again (stale-while-revalidate), and concurrent misses for one patient share one read: a call
  that holds a large parsed prefetch never waits on the database just because the cache aged,
  and a burst of calls does not pile up parsed records behind one slow read. Another
  replica's feedback is seen within the TTL plus one flush interval.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

import anyio

from cds_service.errors import StorageUnavailable
from cds_service.metrics import Metrics
from cds_service.store.base import (
    CardIssued,
    FeedbackItem,
    FeedbackResult,
    FeedbackStore,
    StoreError,
)
from cds_service.tenancy import ClientIdentity, SnoozeScope

logger = logging.getLogger(__name__)

T = TypeVar("T")
Silenced = tuple[frozenset[str], frozenset[str]]
SnoozeKey = tuple[SnoozeScope, str]  # (scope, service id)
Lookup = tuple[datetime, Mapping[str, int], Mapping[str, int]]  # now, snooze days, intervals
NOTHING_SILENCED: Silenced = (frozenset(), frozenset())

BATCH = 1000  # cards per transaction
DROP_LOG_EVERY_S = 10.0  # a full queue logs one line per this many seconds, with the count
PROBE_TIMEOUT_S = 5.0  # the background ping while storage is down


class CardLog:
    def __init__(
        self,
        store: FeedbackStore,
        metrics: Metrics,
        *,
        flush_interval_s: float = 0.2,
        max_pending: int = 10_000,
        retry_max_s: float = 30.0,
        snooze_ttl_s: float = 5.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        publish: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self._metrics = metrics
        self._interval = flush_interval_s
        self._max_pending = max_pending
        self._retry_max = retry_max_s
        self._ttl = snooze_ttl_s
        self._max_cached = max_cached
        self._clock = clock
        self._publish = publish  # tells the other replicas (api/snooze_bus.py), when shared
        self._pending: list[CardIssued] = []
        # scope -> service id -> (fresh until, answer): a scope's entries are dropped together.
        self._cache: dict[SnoozeScope, dict[str, tuple[float, Silenced]]] = {}
        self._reading: dict[SnoozeKey, anyio.Event] = {}
        self._generation = 0  # bumped by each invalidation: a read begun before it is not cached
        self._stale: dict[SnoozeKey, Lookup] = {}  # served past the TTL: read again in background
        self._flush_lock = anyio.Lock()
        # Storage state: consecutive failures, when the next attempt is due, since when down.
        self._failures = 0
        self._retry_at = 0.0
        self._down_since = 0.0
        self._trial = False  # an attempt after the backoff is under way (see _may_try)
        self._drops_unlogged = 0
        self._drop_log_at = 0.0
        self.dropped = 0  # cards dropped from a full queue since start
        self.lost = 0  # cards given up: still queued at shutdown, or refused by the store

    # -- storage state -------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def storage_down(self) -> bool:
        """Whether the last storage access failed (and none has succeeded since)."""
        return self._failures > 0

    def _may_try(self) -> bool:
        """Whether to access storage now: always while it is up; after a failure not before the
        backoff has passed, then for one caller at a time (the others are refused until its
        result closes the breaker or opens it again)."""
        if not self._failures:
            return True
        now = self._clock()
        if now < self._retry_at:
            return False
        self._retry_at = now + self._retry_max  # held by this attempt until it ends
        self._trial = True
        return True

    def retry_after_s(self) -> int:
        """Whole seconds until storage is tried again (at least 1): the ``Retry-After``."""
        return max(1, math.ceil(self._retry_at - self._clock()))

    def _failed(
        self, message: str, *, count: int | None = None, error: BaseException | None = None
    ) -> None:
        """Note a failed storage access: log it (with ``error``'s traceback the first time of an
        outage, a warning line after that) and back off. Accesses that began before the breaker
        opened and fail after it do not lengthen the backoff: only the first failure and each
        failed attempt after a backoff do."""
        now = self._clock()
        first = self._failures == 0
        extra = {"component": "store", "count": count}
        if not first and not self._trial:
            logger.warning(message, extra=extra)
            self._metrics.observe_store_error()
            return
        if first:
            self._down_since = now
        self._trial = False
        self._failures += 1
        self._retry_at = now + min(self._retry_max, self._interval * 2 ** min(self._failures, 30))
        if first:
            logger.error(message, exc_info=error, extra=extra)
        else:
            logger.warning(message, extra=extra)
        self._metrics.observe_store_error()

    def _succeeded(self) -> None:
        if self._failures:
            logger.info(
                "feedback store available again",
                extra={
                    "component": "store",
                    "count": len(self._pending),
                    "duration_ms": round((self._clock() - self._down_since) * 1000),
                },
            )
        self._failures = 0
        self._retry_at = 0.0
        self._trial = False

    async def check_storage(self, timeout_s: float) -> bool:
        """Whether storage answers a ping now (within ``timeout_s``); False at once while the
        breaker refuses (see ``_may_try``). The answer updates the breaker either way."""
        if not self._may_try():
            return False
        store, answered = self.store, False
        with anyio.move_on_after(timeout_s):
            answered = await anyio.to_thread.run_sync(store.ping, abandon_on_cancel=True)
        if answered:
            self._succeeded()
        else:
            self._failed("feedback store unreachable")
        return answered

    async def call(self, operation: Callable[[], T]) -> T:
        """Run one storage operation in a thread behind the breaker. Raises StorageUnavailable
        while the breaker refuses, or when this attempt fails with StoreError."""
        if not self._may_try():
            raise StorageUnavailable(self.retry_after_s())
        try:
            result = await anyio.to_thread.run_sync(operation)
        except StoreError as error:
            self._failed("feedback store unavailable: request answered 503", error=error)
            raise StorageUnavailable(self.retry_after_s()) from None
        self._succeeded()
        return result

    # -- issued cards ---------------------------------------------------------------------------

    def submit(self, cards: Sequence[CardIssued]) -> None:
        """Queue cards for recording; never blocks. A full queue drops its oldest cards."""
        self._pending.extend(cards)
        self._trim()

    def _trim(self) -> None:
        excess = len(self._pending) - self._max_pending
        if excess <= 0:
            return
        del self._pending[:excess]
        self.dropped += excess
        self._drops_unlogged += excess
        self._metrics.observe_store_error()
        if self._clock() >= self._drop_log_at:
            self._log_drops()

    def _log_drops(self) -> None:
        if self._drops_unlogged:
            logger.error(
                "issued cards dropped, oldest first: recording queue full",
                extra={"component": "store", "count": self._drops_unlogged, "reason": "queue-full"},
            )
        self._drops_unlogged = 0
        self._drop_log_at = self._clock() + DROP_LOG_EVERY_S

    async def flush(self, *, force: bool = False) -> bool:
        """Write the queued cards, oldest first, in batches; True when the queue is empty.

        A batch the store fails to write goes back to the front of the queue and False is
        returned. While the breaker refuses nothing is tried (False at once) unless ``force``.
        """
        async with self._flush_lock:
            while self._pending:
                if not force and not self._may_try():
                    return False
                batch = self._pending[:BATCH]
                del self._pending[:BATCH]
                done = written = False
                adopted: frozenset[SnoozeScope] = frozenset()
                try:
                    adopted = await anyio.to_thread.run_sync(self.store.record_cards, batch)
                    done = written = True
                except StoreError as error:
                    self._failed(
                        "issued cards not recorded: kept for a retry", count=len(batch), error=error
                    )
                    return False
                except Exception:  # not an outage: this batch would never be written
                    logger.exception(
                        "issued cards refused by the store: lost",
                        extra={"component": "store", "count": len(batch), "reason": "refused"},
                    )
                    self.lost += len(batch)
                    self._metrics.observe_store_error()
                    done = True
                finally:
                    if not done:  # back to the front of the queue, even when cancelled
                        self._pending[:0] = batch
                        self._trim()
                if written:
                    self._succeeded()
                # Feedback that reached a replica before these cards were written counts now:
                # the snoozes it sets show here and on the other replicas at once.
                await self._scopes_changed(adopted)
            return True

    async def close(self) -> None:
        """At shutdown: flush once more, backoff or not; what is still queued is lost (logged
        with its count)."""
        flushed = await self.flush(force=True)
        self._log_drops()
        if flushed:
            return
        lost, self._pending = len(self._pending), []
        self.lost += lost
        logger.error(
            "issued cards lost at shutdown: feedback store unavailable",
            extra={"component": "store", "count": lost, "reason": "shutdown"},
        )
        self._metrics.observe_store_error()

    async def run(self) -> None:
        """Every ``flush_interval_s`` until cancelled (the app's lifespan owns this task): flush
        issued cards (once the backoff has passed, after a failure), ping storage when it is
        down and nothing is queued to try it with, then read again the snooze entries that were
        served stale."""
        while True:
            await anyio.sleep(self._interval)
            await self.flush()
            if self.storage_down:  # nothing queued to try it with: ping when the backoff allows
                await self.check_storage(PROBE_TIMEOUT_S)
            await self.refresh_stale()

    async def refresh_stale(self) -> None:
        """Read again every snooze entry served past its TTL since the last refresh."""
        stale, self._stale = self._stale, {}
        for key, lookup in stale.items():
            await self._read(key, lookup)

    # -- feedback ------------------------------------------------------------------------------

    async def record_feedback(
        self,
        service_id: str,
        client: ClientIdentity,
        items: Sequence[FeedbackItem],
        received_at: datetime,
    ) -> FeedbackResult:
        """Store ``client``'s feedback once the cards queued here are written, so that feedback
        on them is matched, and drop the snooze cache of the scopes it touched. Raises
        StorageUnavailable when they cannot be written or the feedback cannot be stored."""
        if not await self.flush():
            raise StorageUnavailable(self.retry_after_s())
        store = self.store
        result = await self.call(
            lambda: store.record_feedback(service_id, client, items, received_at)
        )
        # Snooze decisions change in the scopes of the cards this feedback is about (none when
        # they are unknown or another client's).
        await self._scopes_changed(result.scopes)
        return result

    async def _scopes_changed(self, scopes: Iterable[SnoozeScope]) -> None:
        """Feedback now counts in ``scopes``: drop their cached snooze answers here and, when
        shared, on every replica."""
        for scope in sorted(scopes, key=SnoozeScope.encode):
            self.invalidate_scope(scope)
            if self._publish is not None:
                await self._publish(scope.encode())

    # -- snooze --------------------------------------------------------------------------------

    def invalidate(self, scope: str | None = None) -> None:
        """Forget cached snooze lookups after feedback in ``scope`` (``SnoozeScope.encode``, as
        published by a replica that stored feedback; api/snooze_bus.py), or all of them when
        ``scope`` is None (after a gap in the invalidation messages) or cannot be read."""
        decoded = None if scope is None else SnoozeScope.decode(scope)
        if decoded is not None:
            self.invalidate_scope(decoded)
            return
        self._generation += 1
        self._cache.clear()

    def invalidate_scope(self, scope: SnoozeScope) -> None:
        """Drop the cached snooze answers of one scope (client, tenant, fhirServer and patient,
        as ``scope.patient_key``), for every service: the next lookup reads the store. Cheap,
        synchronous, never raises: call it on the event loop whenever feedback for ``scope``
        was stored, here or by another replica."""
        self._generation += 1
        self._cache.pop(scope, None)

    async def silenced(
        self,
        service_id: str,
        scope: SnoozeScope,
        now: datetime,
        snooze_days: Mapping[str, int],
        intervals: Mapping[str, int],
    ) -> Silenced:
        """Topics and suggestion keys silenced in this scope; empty when storage is down."""
        cache_key = (scope, service_id)
        cached = self._cache.get(scope, {}).get(service_id)
        if cached is not None:
            if cached[0] <= self._clock():
                self._stale[cache_key] = (now, snooze_days, intervals)
            return cached[1]
        return await self._read(cache_key, (now, snooze_days, intervals))

    async def _read(self, cache_key: SnoozeKey, lookup: Lookup) -> Silenced:
        """Read from the store and cache; a read already under way for this key is shared.
        Nothing is read while storage is down (the background task finds out when it is back)."""
        if self.storage_down:
            return NOTHING_SILENCED
        scope, service_id = cache_key
        now, snooze_days, intervals = lookup
        under_way = self._reading.get(cache_key)
        if under_way is not None:
            await under_way.wait()
            shared = self._cache.get(scope, {}).get(service_id)
            return shared[1] if shared is not None else NOTHING_SILENCED
        done = self._reading[cache_key] = anyio.Event()
        generation, store = self._generation, self.store

        def read() -> Silenced:
            return (
                store.silenced_topics(scope, now, snooze_days),
                store.silenced_suggestions(scope, now, intervals),
            )

        try:
            result = read() if store.local_reads else await anyio.to_thread.run_sync(read)
        # An outage must not fail the hook call; _failed logs the error with its traceback.
        except Exception as error:  # noqa: BLE001
            self._failed("feedback store unavailable: snooze not applied", error=error)
            return NOTHING_SILENCED
        finally:
            del self._reading[cache_key]
            done.set()
        self._succeeded()
        if generation != self._generation:
            return result  # feedback arrived meanwhile: the next call reads again
        if scope not in self._cache and len(self._cache) >= self._max_cached:
            self._cache.clear()
        self._cache.setdefault(scope, {})[service_id] = (self._clock() + self._ttl, result)
        return result

    async def recent_cards(self, scope: SnoozeScope, since: datetime) -> frozenset[tuple[str, str]]:
        """(topic, draft key) of the cards issued in the scope at or after ``since`` (the
        order-sign repeat check), queued ones included. When storage is down only the queued
        cards are seen: a card is shown again rather than the call failing."""
        await self.flush()
        queued = frozenset(
            (card.topic, card.draft_key)
            for card in self._pending
            if card.scope == scope and card.draft_key is not None and card.issued_at >= since
        )
        if self.storage_down:
            return queued
        store = self.store
        try:
            stored = (
                store.recent_cards(scope, since)
                if store.local_reads
                else await anyio.to_thread.run_sync(store.recent_cards, scope, since)
            )
        # An outage must not fail the hook call; _failed logs the error with its traceback.
        except Exception as error:  # noqa: BLE001
            self._failed(
                "feedback store unavailable: repeat check on queued cards only", error=error
            )
            return queued
        self._succeeded()
        return stored | queued
