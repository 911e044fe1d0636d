"""The gather step of a hook call: every read it needs, and nothing else.

Prefetch (with the FHIR fallback for what the EHR did not send), the topics and suggestions the
calling client's clinicians snoozed for this patient, and (order-sign) the cards shown moments ago for the same
draft order. All I/O of a hook call happens here; decide.py then works on the result alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cds_service.drafts import bundle_entries
from cds_service.hook_call import HookCall
from cds_service.patient_binding import OWN
from cds_service.prefetch import Fetcher, PrefetchResult, resolve
from cds_service.record import RawMatcher
from cds_service.tenancy import SnoozeScope

Silenced = tuple[frozenset[str], frozenset[str]]


class FeedbackLookups(Protocol):
    """What the gather step reads from the feedback store (api.card_log.CardLog). Both answer
    empty, never raise, when storage is down: a call shows cards rather than fail."""

    async def silenced(
        self,
        service_id: str,
        scope: SnoozeScope,
        now: datetime,
        snooze_days: Mapping[str, int],
        intervals: Mapping[str, int],
    ) -> Silenced:
        """Topics and suggestion keys the scope's client silenced for the scope's patient."""
        ...

    async def recent_cards(self, scope: SnoozeScope, since: datetime) -> frozenset[tuple[str, str]]:
        """(topic, draft key) of the cards issued in ``scope`` at or after ``since``."""
        ...


@dataclass(frozen=True)
class Gathered:
    """Everything read for one call."""

    prefetch: PrefetchResult
    silenced_topics: frozenset[str] = frozenset()
    silenced_suggestions: frozenset[str] = frozenset()
    recent_cards: frozenset[tuple[str, str]] = frozenset()  # (topic, draft key)


@dataclass(frozen=True)
class GatherOptions:
    fetcher: Fetcher | None = None  # None: prefetch only (offline evaluation)
    fetch_budget_s: float = 1.5
    feedback: FeedbackLookups | None = None
    max_prefetch_entries: int | None = None  # per prefetch key (CDS_PREFETCH_MAX_ENTRIES)


async def gather(call: HookCall, options: GatherOptions) -> Gathered:
    """Read what the call needs. Raises MissingData (412) when a needed key cannot be had."""
    request, service = call.request, call.service
    silenced: Silenced = (frozenset(), frozenset())
    recent: frozenset[tuple[str, str]] = frozenset()
    feedback, scope = options.feedback, call.scope
    if feedback is not None and scope is not None:
        silenced = await feedback.silenced(
            service.id, scope, call.now, service.snooze_days, service.suggestion_intervals
        )
        window = service.definition.repeat_window_minutes
        if call.hook.skips_repeats and window is not None and call.drafts.focus:
            recent = await feedback.recent_cards(scope, call.now - timedelta(minutes=window))
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
    needs = service.needs(request.hook) if drafts_may_concern(call) else frozenset()
    prefetched = await resolve(
        service.definition.prefetch,
        needs,
        request.context,
        call.prefetch,  # without the keys that hold another patient (hook_call.py)
        fhir_server=request.fhirServer,
        token=token,
        fetcher=options.fetcher,
        budget_s=options.fetch_budget_s,
        max_entries=options.max_prefetch_entries,
        owns=lambda raw: call.binding.resource(raw) == OWN,
    )
    return Gathered(prefetched, silenced[0], silenced[1], recent)


# What an order-hook rule can act on: a glucocorticoid or a vaccine among the drafts.
CONCERN_ROLES = ("gc_ingredients", "gc_products", "vaccines")


def drafts_may_concern(call: HookCall) -> bool:
    """Whether any rule could act on the call's drafts (always, for a hook without drafts).
    Data the rules need is required (412 when it cannot be had) only then: an order-sign with
    nothing but an antibiotic drafted is answered from what is at hand. A draft that names
    its drug only by a reference not in the Bundle may be anything: it counts."""
    if call.hook.focus is None:
        return True
    service = call.service
    matcher = service.derived(
        "gather.concern-matcher",
        lambda: RawMatcher(
            tuple(service.valuesets[r] for r in CONCERN_ROLES if r in service.valuesets)
        ),
    )
    for raw in bundle_entries(call.request.context.get("draftOrders")):
        if matcher.hit(raw, {}):
            return True
        reference = raw.get("medicationReference")
        if isinstance(reference, dict) and not str(reference.get("reference", "")).startswith("#"):
            return True
    return False
