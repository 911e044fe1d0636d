"""What several topics read from the record besides the glucocorticoid: replaced hips, lung
disease, a second immunosuppressant, the newest of a set of hits. Pure functions of the facts."""

from __future__ import annotations

from datetime import date

from cds_service.facts import ClinicalFacts, Hit


def hips_replaced(facts: ClinicalFacts) -> set[str]:
    """The sides ("left", "right") with a hip prosthesis on record."""
    sides: set[str] = set()
    for hit in facts.of("hip_prosthesis"):
        laterality = str(hit.properties.get("laterality", "unknown"))
        if laterality == "bilateral":
            sides |= {"left", "right"}
        elif laterality in ("left", "right"):
            sides.add(laterality)
    return sides


def both_hips_replaced(facts: ClinicalFacts) -> bool:
    return hips_replaced(facts) >= {"left", "right"}


def interstitial_lung_disease(facts: ClinicalFacts) -> tuple[str, ...]:
    """Active ILD, coded on its own or as a myositis code with respiratory involvement."""
    return facts.refs("ild", active_only=True) + tuple(
        h.ref for h in facts.of("myositis", active_only=True) if h.properties.get("ild")
    )


def second_immunosuppressant(facts: ClinicalFacts) -> tuple[str, ...]:
    """Active immunosuppressive drugs or conditions; agents flagged ``immunosuppressive: false``
    in the value set (hydroxychloroquine) do not count."""
    drugs = {
        h.ref
        for h in facts.of("immunosuppressant_drugs", active_only=True)
        if h.properties.get("immunosuppressive") is not False
    }
    return tuple(sorted(drugs | set(facts.refs("immunosuppression_conditions", active_only=True))))


def newest(hits: list[Hit]) -> date | None:
    days = [h.day for h in hits if h.day is not None]
    return max(days) if days else None
