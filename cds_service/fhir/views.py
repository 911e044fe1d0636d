"""Read views of FHIR R4B resources: exactly the fields the rules and cards read, typed as in R4B.

A full fhir.resources model costs 0.12-0.19 ms per resource to validate (fhir_core's Python
validators on every element); a view is a plain pydantic model compiled once, with the same
field names and the same value types (fhir_core's primitive types: a partial date stays a
string, a date a ``date``, a decimal a ``Decimal``), so the readers work on either; the date,
time and decimal types take a native path for their usual values
(:mod:`cds_service.fhir.primitives`: the same values accepted, rejected and converted). Fields
the rules never read are not parsed at all: a malformed one does not drop the entry; a
malformed field they read does (the entry is counted as unreadable, docs/integrity.md).
Required fields and choice types (``effective[x]``) are checked as R4B checks them, for the
fields read.

``tests/test_fhir_views.py`` checks that views and full models agree on every field of every
fixture resource. Full models (:mod:`cds_service.fhir.models`) stay for what we send and for
strict checks in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from fhir_core.types import (
    CodeType,
    IdType,
    IntegerType,
    PositiveIntType,
    StringType,
    UnsignedIntType,
    UriType,
)
from pydantic import BaseModel, ConfigDict, Discriminator, Tag, model_validator

from cds_service.fhir.primitives import DateTimeType, DateType, DecimalType, InstantType, TimeType

__all__ = [
    "VIEW_BY_TYPE",
    "AllergyIntolerance",
    "AllergyIntoleranceReaction",
    "CodeableConcept",
    "Coding",
    "Condition",
    "DiagnosticReport",
    "Dosage",
    "DosageDoseAndRate",
    "Immunization",
    "Medication",
    "MedicationAdministration",
    "MedicationAdministrationDosage",
    "MedicationDispense",
    "MedicationIngredient",
    "MedicationRequest",
    "MedicationRequestDispenseRequest",
    "MedicationStatement",
    "Meta",
    "Observation",
    "ObservationComponent",
    "ObservationReferenceRange",
    "Patient",
    "Period",
    "Procedure",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "Resource",
    "ServiceRequest",
    "Timing",
    "TimingRepeat",
]


class Element(BaseModel):
    """A FHIR element read leniently: unknown and unread fields are ignored, never parsed."""

    # hide_input_in_errors: a validation error never carries patient data (it is not logged
    # anyway; docs/architecture.md "Logging without PHI").
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


class Checked(Element):
    """An element with R4B's cardinality rules on the fields read: ``required`` fields present,
    and each choice type (``effective[x]``: every R4B alternative listed, read or not) given at
    most once, and at least once when R4B requires it."""

    required: ClassVar[tuple[str, ...]] = ()
    choices: ClassVar[tuple[tuple[tuple[str, ...], bool], ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _cardinality(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # pydantic rejects it with its own error
        for name in cls.required:
            if data.get(name) is None:
                raise ValueError("a required field is missing")
        for names, needed in cls.choices:
            given = sum(1 for name in names if data.get(name) is not None)
            if given > 1 or (needed and given == 0):
                raise ValueError("a choice type is given more than once, or not at all")
        return data


# ---------------------------------------------------------------------------- data types


class Coding(Element):
    system: UriType | None = None
    code: CodeType | None = None
    display: StringType | None = None


class CodeableConcept(Element):
    coding: list[Coding] | None = None
    text: StringType | None = None


class Quantity(Element):
    """Quantity, and its profiles Duration and SimpleQuantity (the same fields read)."""

    value: DecimalType | None = None
    comparator: CodeType | None = None
    unit: StringType | None = None
    code: CodeType | None = None


class Range(Element):
    low: Quantity | None = None
    high: Quantity | None = None


class Ratio(Element):
    numerator: Quantity | None = None
    denominator: Quantity | None = None


class Period(Element):
    start: DateTimeType | None = None
    end: DateTimeType | None = None


class Reference(Element):
    reference: StringType | None = None
    display: StringType | None = None


class Meta(Element):
    lastUpdated: InstantType | None = None


class TimingRepeat(Checked):
    choices = ((("boundsDuration", "boundsRange", "boundsPeriod"), False),)

    boundsDuration: Quantity | None = None
    boundsRange: Range | None = None
    boundsPeriod: Period | None = None
    count: PositiveIntType | None = None
    countMax: PositiveIntType | None = None
    frequency: PositiveIntType | None = None
    frequencyMax: PositiveIntType | None = None
    period: DecimalType | None = None
    periodUnit: CodeType | None = None
    dayOfWeek: list[CodeType | None] | None = None
    timeOfDay: list[TimeType | None] | None = None
    when: list[CodeType | None] | None = None


class Timing(Element):
    repeat: TimingRepeat | None = None
    code: CodeableConcept | None = None


class DosageDoseAndRate(Checked):
    choices = ((("doseRange", "doseQuantity"), False),)

    type: CodeableConcept | None = None
    doseRange: Range | None = None
    doseQuantity: Quantity | None = None


class Dosage(Element):
    sequence: IntegerType | None = None
    text: StringType | None = None
    patientInstruction: StringType | None = None
    timing: Timing | None = None
    site: CodeableConcept | None = None
    route: CodeableConcept | None = None
    method: CodeableConcept | None = None
    doseAndRate: list[DosageDoseAndRate] | None = None


# ---------------------------------------------------------------------------- resources


class Resource(Checked):
    """Any resource: its id and meta. ``get_resource_type`` as on fhir.resources models."""

    resource_type: ClassVar[str] = "Resource"

    id: IdType | None = None
    meta: Meta | None = None

    @classmethod
    def get_resource_type(cls) -> str:
        return cls.resource_type


class MedicationIngredient(Checked):
    choices = ((("itemCodeableConcept", "itemReference"), True),)

    itemCodeableConcept: CodeableConcept | None = None
    strength: Ratio | None = None


class Medication(Resource):
    resource_type = "Medication"

    code: CodeableConcept | None = None
    form: CodeableConcept | None = None
    ingredient: list[MedicationIngredient] | None = None


def _contained_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "Medication" if value.get("resourceType") == "Medication" else "other"
    return "other" if isinstance(value, Resource) and not isinstance(value, Medication) else ""


# A contained Medication is read as one (the drug a medication-use resource names); any other
# contained resource only by its id.
Contained = Annotated[
    Annotated[Medication, Tag("Medication")] | Annotated[Resource, Tag("other")],
    Discriminator(_contained_kind),
]

_MEDICATION = (("medicationCodeableConcept", "medicationReference"), True)


class MedicationUse(Resource):
    """What the four medication-use resources share: the drug and its status."""

    required: ClassVar[tuple[str, ...]] = ("status",)

    status: CodeType | None = None
    contained: list[Contained] | None = None
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None


class MedicationRequestDispenseRequest(Element):
    validityPeriod: Period | None = None
    numberOfRepeatsAllowed: UnsignedIntType | None = None
    quantity: Quantity | None = None
    expectedSupplyDuration: Quantity | None = None


class MedicationRequest(MedicationUse):
    resource_type = "MedicationRequest"
    required = ("status", "intent")
    choices = (_MEDICATION,)

    intent: CodeType | None = None
    doNotPerform: bool | None = None
    authoredOn: DateTimeType | None = None
    basedOn: list[Reference] | None = None
    priorPrescription: Reference | None = None
    dosageInstruction: list[Dosage] | None = None
    dispenseRequest: MedicationRequestDispenseRequest | None = None


class MedicationStatement(MedicationUse):
    resource_type = "MedicationStatement"
    choices = (_MEDICATION, (("effectiveDateTime", "effectivePeriod"), False))

    basedOn: list[Reference] | None = None
    partOf: list[Reference] | None = None
    derivedFrom: list[Reference] | None = None
    effectiveDateTime: DateTimeType | None = None
    effectivePeriod: Period | None = None
    dateAsserted: DateTimeType | None = None
    dosage: list[Dosage] | None = None


class MedicationAdministrationDosage(Element):
    site: CodeableConcept | None = None
    route: CodeableConcept | None = None
    method: CodeableConcept | None = None
    dose: Quantity | None = None


class MedicationAdministration(MedicationUse):
    resource_type = "MedicationAdministration"
    choices = (_MEDICATION, (("effectiveDateTime", "effectivePeriod"), True))

    partOf: list[Reference] | None = None
    effectiveDateTime: DateTimeType | None = None
    effectivePeriod: Period | None = None
    request: Reference | None = None
    dosage: MedicationAdministrationDosage | None = None


class MedicationDispense(MedicationUse):
    resource_type = "MedicationDispense"
    choices = (_MEDICATION,)

    authorizingPrescription: list[Reference] | None = None
    quantity: Quantity | None = None
    daysSupply: Quantity | None = None
    whenPrepared: DateTimeType | None = None
    whenHandedOver: DateTimeType | None = None
    dosageInstruction: list[Dosage] | None = None


_ONSET = ("onsetDateTime", "onsetAge", "onsetPeriod", "onsetRange", "onsetString")


class Condition(Resource):
    resource_type = "Condition"
    choices = ((_ONSET, False),)

    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    code: CodeableConcept | None = None
    bodySite: list[CodeableConcept] | None = None
    onsetDateTime: DateTimeType | None = None
    onsetPeriod: Period | None = None
    recordedDate: DateTimeType | None = None


class AllergyIntoleranceReaction(Element):
    substance: CodeableConcept | None = None


class AllergyIntolerance(Resource):
    resource_type = "AllergyIntolerance"
    choices = ((_ONSET, False),)

    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    code: CodeableConcept | None = None
    onsetDateTime: DateTimeType | None = None
    recordedDate: DateTimeType | None = None
    reaction: list[AllergyIntoleranceReaction] | None = None


class Procedure(Resource):
    resource_type = "Procedure"
    required = ("status",)
    choices = (
        (("performedDateTime", "performedPeriod", "performedString", "performedAge",
          "performedRange"), False),
    )  # fmt: skip

    status: CodeType | None = None
    code: CodeableConcept | None = None
    performedDateTime: DateTimeType | None = None
    performedPeriod: Period | None = None
    bodySite: list[CodeableConcept] | None = None


class Immunization(Resource):
    resource_type = "Immunization"
    required = ("status", "vaccineCode")
    choices = ((("occurrenceDateTime", "occurrenceString"), True),)

    status: CodeType | None = None
    vaccineCode: CodeableConcept
    occurrenceDateTime: DateTimeType | None = None
    recorded: DateTimeType | None = None


class ServiceRequest(Resource):
    resource_type = "ServiceRequest"
    required = ("status",)
    choices = ((("occurrenceDateTime", "occurrencePeriod", "occurrenceTiming"), False),)

    status: CodeType | None = None
    code: CodeableConcept | None = None
    occurrenceDateTime: DateTimeType | None = None
    authoredOn: DateTimeType | None = None


class DiagnosticReport(Resource):
    resource_type = "DiagnosticReport"
    required = ("status", "code")
    choices = ((("effectiveDateTime", "effectivePeriod"), False),)

    status: CodeType | None = None
    code: CodeableConcept
    effectiveDateTime: DateTimeType | None = None
    effectivePeriod: Period | None = None
    issued: InstantType | None = None


class ObservationReferenceRange(Element):
    high: Quantity | None = None


_VALUE = (
    "valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger",
    "valueRange", "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod",
)  # fmt: skip


class ObservationComponent(Checked):
    required = ("code",)
    choices = ((_VALUE, False),)

    code: CodeableConcept
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueString: StringType | None = None
    valueBoolean: bool | None = None
    interpretation: list[CodeableConcept] | None = None
    referenceRange: list[ObservationReferenceRange] | None = None


class Observation(Resource):
    resource_type = "Observation"
    required = ("status", "code")
    choices = (
        (("effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant"), False),
        (_VALUE, False),
    )

    status: CodeType | None = None
    code: CodeableConcept
    effectiveDateTime: DateTimeType | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: InstantType | None = None
    issued: InstantType | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueString: StringType | None = None
    valueBoolean: bool | None = None
    interpretation: list[CodeableConcept] | None = None
    referenceRange: list[ObservationReferenceRange] | None = None
    component: list[ObservationComponent] | None = None


class Patient(Resource):
    resource_type = "Patient"
    choices = ((("deceasedBoolean", "deceasedDateTime"), False),)

    birthDate: DateType | None = None
    deceasedBoolean: bool | None = None
    deceasedDateTime: DateTimeType | None = None


# Resource types the rules read. Anything else in a prefetch is ignored without validation.
VIEW_BY_TYPE: dict[str, type[Resource]] = {
    view.resource_type: view
    for view in (
        AllergyIntolerance,
        Condition,
        DiagnosticReport,
        Immunization,
        Medication,
        MedicationAdministration,
        MedicationDispense,
        MedicationRequest,
        MedicationStatement,
        Observation,
        Patient,
        Procedure,
        ServiceRequest,
    )
}
