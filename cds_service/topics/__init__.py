"""The clinical topics: one module per card topic, each serving every hook it applies to.

Each module defines its rule kinds (rule_kind.RuleKind: pure functions of the facts, the shared
glucocorticoid status and the thresholds) and the content they declare; KINDS is the registry
the catalog loader is handed. To add a topic: a module here, its kinds in KINDS, its rules and
text in hooks/<service>/service.toml (docs/architecture.md).
"""

from __future__ import annotations

from cds_service.rule_kind import RuleKind
from cds_service.topics import (
    bone_health,
    current_course,
    dose_unknown,
    infection,
    live_vaccine,
    myositis,
    osteonecrosis,
    record_quality,
)

KINDS: dict[str, RuleKind] = {
    kind.name: kind
    for module in (
        bone_health,
        osteonecrosis,
        infection,
        live_vaccine,
        record_quality,
        dose_unknown,
        current_course,
        myositis,
    )
    for kind in module.KINDS
}

__all__ = ["KINDS"]
