"""A glucocorticoid entry of the patient's record could not be read: say so, never stay silent.

An entry that fails R4 validation (one invalid field, such as ``"status": 7``) or that is not
an R4 type (DSTU2 ``MedicationOrder``) is skipped, so the exposure it records counts for
nothing: a patient whose only steroid order is unreadable would get ``{"cards": []}``, which
reads as "nothing to flag". When the skipped entry's raw codes or text name a glucocorticoid
(the ``gc_ingredients`` and ``gc_products`` value sets, matched on the raw JSON by
record.RawMatcher), an info card asks the clinician to check the chart. Every hook: the facts
count the patient's own entries only (another patient's entries are dropped before, by
patient_binding.py), by the words the service gives each prefetch key (``data_labels``), and
the draft orders apart.
"""

from __future__ import annotations

from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding, RuleKind
from cds_service.steroid_status import SteroidStatus
from cds_service.thresholds import Thresholds


def evaluate_unreadable_steroid(
    facts: ClinicalFacts, _: SteroidStatus, __: Thresholds
) -> Finding | None:
    counts = {label: n for label, n in facts.unreadable_steroid_entries.items() if n > 0}
    drafts = facts.unreadable_steroid_drafts
    total = sum(counts.values()) + drafts
    if total == 0:
        return None
    details = (("entries",) if counts else ()) + (("drafts",) if drafts else ())
    return Finding(
        summary="one" if total == 1 else "several",
        details=(*details, "check-chart"),
        indicator="info",
        facts={
            "count": str(total),
            "entries": ", ".join(f"{n} in {label}" for label, n in sorted(counts.items())),
            "drafts": str(drafts),
        },
        evidence=(),  # the entries could not be read: there is nothing to cite but counts
    )


UNREADABLE_STEROID = RuleKind(
    name="unreadable-glucocorticoid-entry",
    roles=("gc_ingredients", "gc_products"),
    thresholds=(),
    summaries=("one", "several"),
    details=("entries", "drafts", "check-chart"),
    suggestions=(),
    sample_facts={
        "count": "1250",
        "entries": (
            "250 in medication orders, 250 in medication statements, 250 in medication "
            "administrations, 250 in medication dispenses"
        ),
        "drafts": "250",
    },
    evaluate=evaluate_unreadable_steroid,
)

KINDS = (UNREADABLE_STEROID,)
