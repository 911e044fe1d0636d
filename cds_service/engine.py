"""One hook call: gather (all I/O, async) then decide (pure, synchronous).

    HookCall.of(request, service, now)   400 unless the hook and its context are right
    -> gather.gather()                   prefetch + FHIR fallback, snooze, recent cards
    -> decide.decide()                   record -> exposure -> facts -> rules -> cards

The Engine holds the options of both steps, built once per process (main.py) or per test.
Up to OFFLOAD_ALL_ENTRIES entries the patient's record is selected on the event loop (a walk
over the parsed JSON that keeps what the rules read: microseconds per entry, like the parse
before it). The rest of decide() runs inline for an ordinary record, where a thread hop would
cost more than the work, and in a worker thread for a heavy one (many glucocorticoid entries
or thousands of selected resources) or a very large request, so the event loop keeps
answering other calls and /healthz meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import anyio.to_thread

from cds_service.decide import (
    DecideOptions,
    Evaluation,
    ResponseCheckFailed,
    decide,
    patient_record,
)
from cds_service.gather import Gathered, GatherOptions, gather
from cds_service.hook_call import HookCall
from cds_service.record import MEDICATION_USE_TYPES, PatientRecord

# When the rest of decide() runs off the event loop, judged on the selected record. Medication
# entries (and draft orders) are what costs: each becomes a course on the exposure timeline
# (1,000 copies of the seed's prednisone order: about 0.2 s for the whole call, `cds-service
# evaluate`); other selected resources cost tens of microseconds. Below both lines a call
# holds the loop some 20-40 ms at most; above them the thread hop and GIL hand-offs (about
# 1.5 ms on a 1,000-entry record) cost less than the stall they prevent (docs/performance.md).
OFFLOAD_MIN_MEDICATION_ENTRIES = 100
OFFLOAD_MIN_SELECTED = 1500
# Entries (prefetched or fetched resources plus draft orders) from which even the selection
# runs in the worker thread: a selected resource costs about 11 µs to read (its view;
# docs/performance.md), so 2,000 entries that all need reading hold the loop some 20-30 ms,
# and a flood of 10,000 (docs/integrity.md) would hold it far longer.
OFFLOAD_ALL_ENTRIES = 2000
# Threads deciding at once: under the GIL more would not add throughput, only memory (each
# holds a parsed record).
OFFLOAD_THREADS = 2


@dataclass(frozen=True)
class Engine:
    gather: GatherOptions = field(default_factory=GatherOptions)
    decide: DecideOptions = field(default_factory=DecideOptions)
    _limiter: list[anyio.CapacityLimiter] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    async def evaluate(self, call: HookCall) -> Evaluation:
        """Run one hook call. Raises MissingData (412) when a needed key cannot be had."""
        gathered = await gather(call, self.gather)
        record = None
        if _entries(call, gathered) < OFFLOAD_ALL_ENTRIES:
            record = patient_record(call, gathered)
            if not _heavy(call, record):
                return decide(call, gathered, self.decide, record)
        return await anyio.to_thread.run_sync(
            decide, call, gathered, self.decide, record, limiter=self._threads()
        )

    def _threads(self) -> anyio.CapacityLimiter:
        # Created on first use: a limiter belongs to the running event loop.
        if not self._limiter:
            self._limiter.append(anyio.CapacityLimiter(OFFLOAD_THREADS))
        return self._limiter[0]


def _entries(call: HookCall, gathered: Gathered) -> int:
    drafts = call.drafts
    entries = sum(len(v) for v in gathered.prefetch.entries.values())
    return entries + len(drafts.medication_requests) + len(drafts.entries)


def _heavy(call: HookCall, record: PatientRecord) -> bool:
    """Whether deciding on ``record`` could hold the event loop for long (see the lines above)."""
    drafts = call.drafts
    medications = sum(len(record.by_type.get(t, [])) for t in MEDICATION_USE_TYPES)
    medications += len(drafts.medication_requests)
    selected = sum(len(resources) for resources in record.by_type.values()) + len(drafts.entries)
    return medications >= OFFLOAD_MIN_MEDICATION_ENTRIES or selected >= OFFLOAD_MIN_SELECTED


__all__ = ["Engine", "Evaluation", "HookCall", "ResponseCheckFailed"]
