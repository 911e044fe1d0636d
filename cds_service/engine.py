"""One hook call: gather (all I/O, async) then decide (pure, synchronous).

    HookCall.of(request, service, now)   400 unless the hook and its context are right
    -> gather.gather()                   prefetch + FHIR fallback, snooze, recent cards
    -> decide.decide()                   record -> exposure -> facts -> rules -> cards

The Engine holds the options of both steps, built once per process (main.py) or per test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cds_service.decide import DecideOptions, Evaluation, ResponseCheckFailed, decide
from cds_service.gather import GatherOptions, gather
from cds_service.hook_call import HookCall


@dataclass(frozen=True)
class Engine:
    gather: GatherOptions = field(default_factory=GatherOptions)
    decide: DecideOptions = field(default_factory=DecideOptions)

    async def evaluate(self, call: HookCall) -> Evaluation:
        """Run one hook call. Raises MissingData (412) when a needed key cannot be had."""
        gathered = await gather(call, self.gather)
        return decide(call, gathered, self.decide)


__all__ = ["Engine", "Evaluation", "HookCall", "ResponseCheckFailed"]
