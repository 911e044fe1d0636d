"""FHIR R4 access: models, the client (errors, urls, transport, bundles), references, quirks."""
