"""A glucocorticoid entry of the patient's record could not be read: say so, never stay silent.

An entry that fails R4 validation (one invalid field, such as ``"status": 7``) or that is not
an R4 type (DSTU2 ``MedicationOrder``) is skipped, so the exposure it records counts for
nothing: a patient whose only steroid order is unreadable would get ``{"cards": []}``, which
reads as "nothing to flag". When the skipped entry's raw codes or text name a glucocorticoid
(the ``gc_ingredients`` and ``gc_products`` value sets, matched on the raw JSON by
record.RawMatcher), an info card asks the clinician to check the chart. Every hook: the facts
count the patient's own entries only (another patient's entries are dropped before, by
patient_binding.py), by prefetch key, with ``context.draftOrders`` for draft orders.
"""

from __future__ import annotations

from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding, RuleKind
from cds_service.steroid_status import SteroidStatus
from cds_service.thresholds import Thresholds


def evaluate_unreadable_steroid(
    facts: ClinicalFacts, _: SteroidStatus, __: Thresholds
) -> Finding | None:
    counts = {key: n for key, n in facts.unreadable_steroid_entries.items() if n > 0}
    if not counts:
        return None
    total = sum(counts.values())
    return Finding(
        summary="one" if total == 1 else "several",
        details=("entries", "check-chart"),
        indicator="info",
        facts={
            "count": str(total),
            "entries": ", ".join(f"{n} in {key}" for key, n in sorted(counts.items())),
        },
        evidence=(),  # the entries could not be read: there is nothing to cite but counts
    )


UNREADABLE_STEROID = RuleKind(
    name="unreadable-glucocorticoid-entry",
    roles=("gc_ingredients", "gc_products"),
    thresholds=(),
    summaries=("one", "several"),
    details=("entries", "check-chart"),
    suggestions=(),
    sample_facts={
        "count": "1250",
        "entries": (
            "250 in medications, 250 in statements, 250 in administrations, 250 in dispenses, "
            "250 in context.draftOrders"
        ),
    },
    evaluate=evaluate_unreadable_steroid,
)

KINDS = (UNREADABLE_STEROID,)
