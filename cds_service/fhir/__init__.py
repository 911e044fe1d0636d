"""FHIR R4 access: models, client and pure extraction helpers."""
