"""One hook call: gather (all I/O, async) then decide (pure, synchronous).

    HookCall.of(request, service, now)   400 unless the hook and its context are right
    -> gather.gather()                   prefetch + FHIR fallback, snooze, recent cards
    -> decide.decide()                   record -> exposure -> facts -> rules -> cards

The Engine holds the options of both steps, built once per process (main.py) or per test.
A large record is decided in a worker thread, so the event loop keeps answering other calls
(and /healthz) while thousands of resources are validated; a small one is decided inline,
where a thread hop would cost more than the work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import anyio.to_thread

from cds_service.decide import DecideOptions, Evaluation, ResponseCheckFailed, decide
from cds_service.gather import Gathered, GatherOptions, gather
from cds_service.hook_call import HookCall

# Entries (prefetched or fetched resources plus draft orders) from which decide() runs off the
# event loop. Below it a first call for a chart holds the loop for well under 100 ms (a
# 664-resource Synthea record: about 60 ms); above it the thread hop and GIL hand-offs cost
# less than the stall they prevent (measured with `make bench`, docs/performance.md).
OFFLOAD_MIN_ENTRIES = 1000
# Threads deciding at once: under the GIL more would not add throughput, only memory (each
# holds a parsed record).
OFFLOAD_THREADS = 2


@dataclass(frozen=True)
class Engine:
    gather: GatherOptions = field(default_factory=GatherOptions)
    decide: DecideOptions = field(default_factory=DecideOptions)
    offload_min_entries: int = OFFLOAD_MIN_ENTRIES
    _limiter: list[anyio.CapacityLimiter] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    async def evaluate(self, call: HookCall) -> Evaluation:
        """Run one hook call. Raises MissingData (412) when a needed key cannot be had."""
        gathered = await gather(call, self.gather)
        if _size(call, gathered) < self.offload_min_entries:
            return decide(call, gathered, self.decide)
        return await anyio.to_thread.run_sync(
            decide, call, gathered, self.decide, limiter=self._threads()
        )

    def _threads(self) -> anyio.CapacityLimiter:
        # Created on first use: a limiter belongs to the running event loop.
        if not self._limiter:
            self._limiter.append(anyio.CapacityLimiter(OFFLOAD_THREADS))
        return self._limiter[0]


def _size(call: HookCall, gathered: Gathered) -> int:
    drafts = call.drafts
    entries = sum(len(v) for v in gathered.prefetch.entries.values())
    return entries + len(drafts.medication_requests) + len(drafts.entries)


__all__ = ["Engine", "Evaluation", "HookCall", "ResponseCheckFailed"]
