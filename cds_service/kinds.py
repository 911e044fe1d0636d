"""Registry of rule kinds by name (the ``kind`` a rule in hooks/ names)."""

from __future__ import annotations

from cds_service.order_rules import ORDER_KINDS
from cds_service.rules import BONE_HEALTH, INFECTION, OSTEONECROSIS, RuleKind

KINDS: dict[str, RuleKind] = {
    kind.name: kind for kind in (BONE_HEALTH, OSTEONECROSIS, INFECTION, *ORDER_KINDS)
}
