"""Which systemic glucocorticoid a FHIR medication record names, and how much of it a Dosage gives.

Pure functions over R4B models and offline value sets; no I/O. Clinical content (codes, the
product table, route and dose-form word lists) arrives in :class:`GlucocorticoidKnowledge`.
What lives here is generic: UCUM/common unit spellings, the RxNorm normalised-name grammar
(clinical-knowledge.md D6) and FHIR data-type plumbing. The exposure policies that use it are
documented in :mod:`cds_service.exposure`.

Modules: ``knowledge`` (the loaded content, :class:`DrugInfo`, the memos), ``identify`` (which
drug a record names), ``dosage`` (administrations per day), ``dose`` (mg per administration and
how it was derived), ``sig`` (free-text instructions), ``route``
(the route of a Dosage), ``strength`` and ``rxnorm_names`` (strengths from ratios and product
names), ``units`` and ``concepts`` (FHIR data-type plumbing).
"""

from cds_service.fhir.references import relative_reference
from cds_service.medications.concepts import codings_of, texts_of
from cds_service.medications.dosage import (
    TIMING_CODE_PER_DAY,
    WEEKDAYS,
    Schedule,
    dosage_route_texts,
    schedule,
)
from cds_service.medications.dose import (
    NO_DOSE,
    BodyBasis,
    Dose,
    DoseReason,
    DoseSource,
    amount_dose,
    amount_mg,
    dose_per_administration,
    quantity_mg,
    read_quantity,
    weakest_source,
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
from cds_service.medications.sig import Sig, SigStep, parse_sig
from cds_service.medications.strength import Strength, ratio_strength
from cds_service.medications.units import (
    BODY_MASS_TO_KG,
    COUNT_UNITS,
    LENGTH_TO_CM,
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
    "BODY_MASS_TO_KG",
    "COUNT_UNITS",
    "IDENTIFY_MEMO_SIZE",
    "LENGTH_TO_CM",
    "MASS_TO_MG",
    "MAX_SPAN_DAYS",
    "NO_DOSE",
    "PACK_UNITS",
    "TIMING_CODE_PER_DAY",
    "UNIT_DAYS",
    "VOLUME_TO_ML",
    "WEEKDAYS",
    "BodyBasis",
    "Dose",
    "DoseReason",
    "DoseSource",
    "DrugInfo",
    "GlucocorticoidKnowledge",
    "ParsedName",
    "Route",
    "Schedule",
    "Sig",
    "SigStep",
    "Strength",
    "amount_dose",
    "amount_mg",
    "codings_of",
    "dosage_route_texts",
    "dose_per_administration",
    "duration_days",
    "identify_drug",
    "mass_mg",
    "normalize_unit",
    "parse_rxnorm_name",
    "parse_sig",
    "quantity_mg",
    "ratio_strength",
    "read_quantity",
    "relative_reference",
    "route_of",
    "schedule",
    "texts_of",
    "to_float",
    "weakest_source",
]
