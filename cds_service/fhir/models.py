"""The only import of fhir.resources: R4B models (R4-compatible). R5 rejects R4 data."""

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationadministration import (
    MedicationAdministration,
    MedicationAdministrationDosage,
)
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.ratio import Ratio
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.timing import Timing, TimingRepeat

__all__ = [
    "MODEL_BY_TYPE",
    "AllergyIntolerance",
    "Bundle",
    "CodeableConcept",
    "Condition",
    "DiagnosticReport",
    "Dosage",
    "FHIRResourceModel",
    "Immunization",
    "Medication",
    "MedicationAdministration",
    "MedicationAdministrationDosage",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "Meta",
    "Observation",
    "Patient",
    "Period",
    "Procedure",
    "Quantity",
    "Ratio",
    "Reference",
    "Resource",
    "ServiceRequest",
    "Timing",
    "TimingRepeat",
]

# Resource types the rules read. Anything else in a prefetch is ignored without validation.
MODEL_BY_TYPE: dict[str, type[FHIRResourceModel]] = {
    "AllergyIntolerance": AllergyIntolerance,
    "Condition": Condition,
    "DiagnosticReport": DiagnosticReport,
    "Immunization": Immunization,
    "Medication": Medication,
    "MedicationAdministration": MedicationAdministration,
    "MedicationDispense": MedicationDispense,
    "MedicationRequest": MedicationRequest,
    "MedicationStatement": MedicationStatement,
    "Observation": Observation,
    "Patient": Patient,
    "Procedure": Procedure,
    "ServiceRequest": ServiceRequest,
}
