"""What several topics read from the record besides the glucocorticoid: replaced joints and their
sides, where a pain is, lung disease, a second immunosuppressant, the newest of a set of hits.
Pure functions of the facts.

Joints and sides. A prosthesis, a pain or an osteonecrosis entry says which joint and side it is
at either by its code (value-set properties ``site`` and ``laterality``, e.g. Z96.651 -> right
knee) or, when the code does not say, by the joint-site and laterality roles matched on the same
resource: its code text, coding displays and bodySite (a SNOMED laterality qualifier or the
words). clinical-knowledge-2.md 9.2: the code first, then the qualifier codes, then the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import NamedTuple

from cds_service.facts import ClinicalFacts, Hit

JOINTS = ("hip", "knee", "shoulder", "ankle", "elbow")
SIDES = ("left", "right")
PROSTHESIS_ROLES: Mapping[str, str] = {joint: f"{joint}_prosthesis" for joint in JOINTS}
SITE_ROLES: Mapping[str, str] = {joint: f"joint_site_{joint}" for joint in JOINTS}
SIDE_ROLES: Mapping[str, str] = {
    side: f"laterality_{side}" for side in ("left", "right", "bilateral")
}
LOCATION_ROLES = (*SITE_ROLES.values(), *SIDE_ROLES.values())


class Site(NamedTuple):
    """Where an entry is: a joint (None when not named) and a side (left, right, bilateral or
    unknown), with the reference of the entry."""

    joint: str | None
    side: str
    ref: str


def _named(facts: ClinicalFacts, roles: Mapping[str, str], ref: str) -> set[str]:
    """The keys of ``roles`` whose role matched the resource ``ref``."""
    return {key for key, role in roles.items() if any(h.ref == ref for h in facts.of(role))}


def side_of(facts: ClinicalFacts, hit: Hit) -> str:
    """left, right, bilateral or unknown: the code's laterality, else the laterality roles."""
    coded = str(hit.properties.get("laterality", "unknown"))
    if coded in ("left", "right", "bilateral"):
        return coded
    named = _named(facts, SIDE_ROLES, hit.ref)
    if "bilateral" in named or set(SIDES) <= named:
        return "bilateral"
    return named.pop() if len(named) == 1 else "unknown"


def joints_of(facts: ClinicalFacts, hit: Hit) -> set[str]:
    """The joints an entry names: the code's ``site``, else the joint-site roles."""
    coded = hit.properties.get("site")
    if coded in JOINTS:
        return {str(coded)}
    return _named(facts, SITE_ROLES, hit.ref)


def replaced(facts: ClinicalFacts, joint: str) -> set[str]:
    """The sides of ``joint`` with a prosthesis on record: left, right, and unknown when an entry
    does not say which side."""
    sides: set[str] = set()
    for hit in facts.of(PROSTHESIS_ROLES[joint]):
        side = side_of(facts, hit)
        sides |= set(SIDES) if side == "bilateral" else {side}
    return sides


def replaced_joints(facts: ClinicalFacts) -> dict[str, set[str]]:
    """Every joint with a prosthesis on record -> its replaced sides (see ``replaced``)."""
    return {joint: sides for joint in JOINTS if (sides := replaced(facts, joint))}


def prosthesis_refs(facts: ClinicalFacts) -> tuple[str, ...]:
    return tuple(sorted({r for role in PROSTHESIS_ROLES.values() for r in facts.refs(role)}))


def hips_replaced(facts: ClinicalFacts) -> set[str]:
    """The sides ("left", "right") with a hip prosthesis on record."""
    return replaced(facts, "hip") - {"unknown"}


def both_hips_replaced(facts: ClinicalFacts) -> bool:
    return hips_replaced(facts) >= {"left", "right"}


def pain_sites(facts: ClinicalFacts) -> list[Site]:
    """Where each active joint pain is. A pain naming several joints and both sides without
    saying which is which ("right hip and left knee pain") has side unknown at each joint."""
    sites: list[Site] = []
    for hit in facts.of("joint_pain", active_only=True):
        joints = joints_of(facts, hit)
        side = side_of(facts, hit)
        if len(joints) > 1 and side == "bilateral" and "bilateral" not in _words(facts, hit):
            side = "unknown"
        named: list[str | None] = [*sorted(joints)] or [None]
        sites.extend(Site(joint, side, hit.ref) for joint in named)
    return sites


def _words(facts: ClinicalFacts, hit: Hit) -> set[str]:
    return _named(facts, {"bilateral": SIDE_ROLES["bilateral"]}, hit.ref)


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
