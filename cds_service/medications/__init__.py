"""Which systemic glucocorticoid a FHIR medication record names, and how much of it a Dosage gives.

Pure functions over R4B models and offline value sets; no I/O. Clinical content (codes, the
product table, route and dose-form word lists) arrives in :class:`GlucocorticoidKnowledge`.
What lives here is generic: UCUM/common unit spellings, the RxNorm normalised-name grammar
(clinical-knowledge.md D6) and FHIR data-type plumbing. The exposure policies that use it are
documented in :mod:`cds_service.exposure`.

Modules: ``knowledge`` (the loaded content, :class:`DrugInfo`, the memos), ``identify`` (which
drug a record names), ``dosage`` (administrations per day, mg per administration), ``route``
(the route of a Dosage), ``strength`` and ``rxnorm_names`` (strengths from ratios and product
names), ``units`` and ``concepts`` (FHIR data-type plumbing).
"""

from cds_service.fhir.references import relative_reference
from cds_service.medications.concepts import codings_of, texts_of
from cds_service.medications.dosage import (
    TIMING_CODE_PER_DAY,
    WEEKDAYS,
    Dose,
    Schedule,
    amount_mg,
    dosage_route_texts,
    dose_per_administration,
    quantity_mg,
    schedule,
)
from cds_service.medications.identify import identify_drug
from cds_service.medications.knowledge import (
    IDENTIFY_MEMO_SIZE,
    DrugInfo,
    GlucocorticoidKnowledge,
    Route,
)
from cds_service.medications.route import route_of
from cds_service.medications.rxnorm_names import ParsedName, parse_rxnorm_name
from cds_service.medications.strength import Strength, ratio_strength
from cds_service.medications.units import (
    COUNT_UNITS,
    MASS_TO_MG,
    MAX_SPAN_DAYS,
    PACK_UNITS,
    UNIT_DAYS,
    VOLUME_TO_ML,
    duration_days,
    mass_mg,
    normalize_unit,
    to_float,
)

__all__ = [
    "COUNT_UNITS",
    "IDENTIFY_MEMO_SIZE",
    "MASS_TO_MG",
    "MAX_SPAN_DAYS",
    "PACK_UNITS",
    "TIMING_CODE_PER_DAY",
    "UNIT_DAYS",
    "VOLUME_TO_ML",
    "WEEKDAYS",
    "Dose",
    "DrugInfo",
    "GlucocorticoidKnowledge",
    "ParsedName",
    "Route",
    "Schedule",
    "Strength",
    "amount_mg",
    "codings_of",
    "dosage_route_texts",
    "dose_per_administration",
    "duration_days",
    "identify_drug",
    "mass_mg",
    "normalize_unit",
    "parse_rxnorm_name",
    "quantity_mg",
    "ratio_strength",
    "relative_reference",
    "route_of",
    "schedule",
    "texts_of",
    "to_float",
]
