"""The feedback store as hook calls see it: write-behind recording and cached snooze lookups.

Hook calls must not wait for the database, and a storage outage must not fail them:

* issued cards are queued and written in batches by one background task (one transaction per
  batch, off the event loop); the queue is bounded, flushed at shutdown, and flushed before any
  read that depends on it (feedback, the order-hook repeat check);
* snooze lookups (topics and suggestions silenced for a patient) take one thread hop and are
  cached for a few seconds per patient key; feedback received by this process clears the cache.
  Past that time a cached answer is still served once more while the background task reads it
  again (stale-while-revalidate), and concurrent misses for one patient share one read: a call
  that holds a large parsed prefetch never waits on the database just because the cache aged,
  and a burst of calls does not pile up parsed records behind one slow read. Another
  replica's feedback is seen within the TTL plus one flush interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import anyio

from cds_service.metrics import Metrics
from cds_service.store.base import CardIssued, FeedbackStore

logger = logging.getLogger(__name__)

Silenced = tuple[frozenset[str], frozenset[str]]
SnoozeKey = tuple[str, str]  # (service id, patient key)
Lookup = tuple[datetime, Mapping[str, int], Mapping[str, int]]  # now, snooze days, intervals


class CardLog:
    def __init__(
        self,
        store: FeedbackStore,
        metrics: Metrics,
        *,
        flush_interval_s: float = 0.2,
        max_pending: int = 10_000,
        snooze_ttl_s: float = 5.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._metrics = metrics
        self._interval = flush_interval_s
        self._max_pending = max_pending
        self._ttl = snooze_ttl_s
        self._max_cached = max_cached
        self._clock = clock
        self._pending: list[CardIssued] = []
        self._cache: dict[SnoozeKey, tuple[float, Silenced]] = {}
        self._reading: dict[SnoozeKey, anyio.Event] = {}
        self._generation = 0  # bumped by invalidate(): a read begun before it is not cached
        self._stale: dict[SnoozeKey, Lookup] = {}  # served past the TTL: read again in background
        self._flush_lock = anyio.Lock()

    # -- issued cards ---------------------------------------------------------------------------

    def submit(self, cards: Sequence[CardIssued]) -> None:
        """Queue cards for recording; never blocks. A full queue drops them (logged, counted)."""
        if len(self._pending) + len(cards) > self._max_pending:
            logger.error(
                "issued cards dropped: recording queue full",
                extra={"count": len(cards), "component": "store"},
            )
            self._metrics.observe_store_error()
            return
        self._pending.extend(cards)

    async def flush(self) -> None:
        """Write every queued card now (one transaction); an outage is logged and counted."""
        async with self._flush_lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                await anyio.to_thread.run_sync(self.store.record_cards, batch)
            except Exception:
                logger.exception(
                    "issued cards not recorded", extra={"count": len(batch), "component": "store"}
                )
                self._metrics.observe_store_error()

    async def run(self) -> None:
        """Every ``flush_interval_s`` until cancelled (the app's lifespan owns this task): flush
        issued cards, then read again the snooze entries that were served stale."""
        while True:
            await anyio.sleep(self._interval)
            await self.flush()
            await self.refresh_stale()

    async def refresh_stale(self) -> None:
        """Read again every snooze entry served past its TTL since the last refresh."""
        stale, self._stale = self._stale, {}
        for key, lookup in stale.items():
            await self._read(key, lookup)

    # -- snooze --------------------------------------------------------------------------------

    def invalidate(self) -> None:
        self._generation += 1
        self._cache.clear()

    async def silenced(
        self,
        service_id: str,
        patient_key: str,
        now: datetime,
        snooze_days: Mapping[str, int],
        intervals: Mapping[str, int],
    ) -> Silenced:
        """Topics and suggestion keys silenced for this patient; empty when storage is down."""
        cache_key = (service_id, patient_key)
        cached = self._cache.get(cache_key)
        if cached is not None:
            if cached[0] <= self._clock():
                self._stale[cache_key] = (now, snooze_days, intervals)
            return cached[1]
        return await self._read(cache_key, (now, snooze_days, intervals))

    async def _read(self, cache_key: SnoozeKey, lookup: Lookup) -> Silenced:
        """Read from the store and cache; a read already under way for this key is shared."""
        patient_key = cache_key[1]
        now, snooze_days, intervals = lookup
        under_way = self._reading.get(cache_key)
        if under_way is not None:
            await under_way.wait()
            shared = self._cache.get(cache_key)
            return shared[1] if shared is not None else (frozenset(), frozenset())
        done = self._reading[cache_key] = anyio.Event()
        generation, store = self._generation, self.store

        def read() -> Silenced:
            return (
                store.silenced_topics(patient_key, now, snooze_days),
                store.silenced_suggestions(patient_key, now, intervals),
            )

        try:
            result = await anyio.to_thread.run_sync(read)
        except Exception:  # a storage outage must not fail the hook call
            logger.exception(
                "feedback store unavailable: snooze not applied", extra={"component": "store"}
            )
            self._metrics.observe_store_error()
            return frozenset(), frozenset()
        finally:
            del self._reading[cache_key]
            done.set()
        if generation != self._generation:
            return result  # feedback arrived meanwhile: the next call reads again
        if len(self._cache) >= self._max_cached:
            self._cache.clear()
        self._cache[cache_key] = (self._clock() + self._ttl, result)
        return result

    async def recent_cards(self, patient_key: str, since: datetime) -> frozenset[tuple[str, str]]:
        """(topic, draft key) of the cards issued for the patient at or after ``since`` (the
        order-sign repeat check); empty when storage is down: the card is shown again rather
        than the call failing."""
        await self.flush()
        store = self.store
        try:
            return await anyio.to_thread.run_sync(store.recent_cards, patient_key, since)
        except Exception:
            logger.exception(
                "feedback store unavailable: repeat check skipped", extra={"component": "store"}
            )
            self._metrics.observe_store_error()
            return frozenset()
