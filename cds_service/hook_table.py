"""The hook table: everything that differs between the CDS Hooks this service answers.

One entry per hook says which context fields it requires, whether it carries draft orders and
which of them it advises on (its focus), and whether a card shown moments ago for the same draft
order is left out. Nothing else in the engine compares hook names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cds_service.drafts import (
    DraftOrders,
    bundle_entries,
    check_draft_patients,
    entry_reference,
    read_drafts,
)
from cds_service.errors import InvalidRequest
from cds_service.patient_binding import PatientBinding
from cds_service.steroid_status import OrderedSteroid

Context = Mapping[str, Any]
# R4 id datatype (https://hl7.org/fhir/R4/datatypes.html#id): it goes into search URLs and cards.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
REFERENCE_MAX = 256  # "Practitioner/<id>" and the like
Focus = Callable[[Context, list[Mapping[str, Any]]], frozenset[str]]


def _selections(context: Context, _: list[Mapping[str, Any]]) -> frozenset[str]:
    """order-select advises on the selected drafts, named ``Type/id`` (sandbox entries carry no
    ``fullUrl``)."""
    selections = context.get("selections")
    if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
        raise InvalidRequest("context.selections must be a list of Type/id strings")
    return frozenset(selections)


def _everything(_: Context, entries: list[Mapping[str, Any]]) -> frozenset[str]:
    """order-sign advises on every draft being signed."""
    return frozenset(entry_reference(e) for e in entries)


@dataclass(frozen=True)
class HookSpec:
    name: str
    required_context: tuple[str, ...]
    focus: Focus | None = None  # None: the hook carries no draft orders
    # order-select re-fires on every edit of the draft (the sandbox does), so it always shows
    # its advice; order-sign leaves out what was shown for the same order moments ago.
    skips_repeats: bool = False

    def check_context(self, context: Context) -> None:
        """400 unless the context carries what this hook requires."""
        missing = [n for n in self.required_context if context.get(n) in (None, "", [], {})]
        if missing:
            raise InvalidRequest(
                "context is missing: " + ", ".join(f"context.{m}" for m in missing)
            )
        for name in ("patientId", "encounterId"):  # encounterId is optional: null or "" is none
            value = context.get(name)
            if value in (None, "") and name == "encounterId":
                continue
            if not (isinstance(value, str) and FHIR_ID.fullmatch(value)):
                raise InvalidRequest(f"context.{name} must be a FHIR id ([A-Za-z0-9-.], 1-64)")
        for name in ("userId", "selections"):
            values = context.get(name)
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, str) and len(value) > REFERENCE_MAX:
                    raise InvalidRequest(f"context.{name} is longer than {REFERENCE_MAX}")

    def read_drafts(self, context: Context, binding: PatientBinding) -> DraftOrders:
        """The hook's draft orders and focus (none for a hook without drafts); 400 when a
        draft names another patient than the context's."""
        if self.focus is None:
            return DraftOrders()
        bundle = context.get("draftOrders")
        entries = bundle_entries(bundle)
        check_draft_patients(bundle, binding)
        return read_drafts(entries, self.focus(context, entries))

    def draft_key(self, drafts: DraftOrders, ordered: OrderedSteroid | None) -> str | None:
        """The one key cards of this call are recorded under: the glucocorticoid draft(s) in
        focus (the same at order-select and at the order-sign of that order, whatever else is
        drafted with it), else the whole draftOrders Bundle; None without drafts."""
        if self.focus is None:
            return None
        return ordered.key if ordered is not None else drafts.bundle_key


DEFAULT_HOOK = "patient-view"  # a rule that names no hooks serves this one

HOOKS: dict[str, HookSpec] = {
    spec.name: spec
    for spec in (
        HookSpec(DEFAULT_HOOK, ("patientId", "userId")),
        HookSpec("order-select", ("patientId", "userId", "draftOrders", "selections"), _selections),
        HookSpec("order-sign", ("patientId", "userId", "draftOrders"), _everything, True),
    )
}
