"""One hook call as the engine sees it: the request checked against its service and hook."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cds_service.catalog import Service
from cds_service.cdshooks import CDSRequest
from cds_service.drafts import DraftOrders
from cds_service.errors import InvalidRequest
from cds_service.fhir.quirks import unwrap_prefetch_value
from cds_service.hook_table import HOOKS, HookSpec
from cds_service.patient_binding import OWN, PatientBinding, Verdict


@dataclass(frozen=True)
class HookCall:
    request: CDSRequest
    service: Service
    hook: HookSpec
    drafts: DraftOrders  # the order hooks' draft orders and focus; empty for patient-view
    now: datetime  # the evaluation time: every date judgement is made against it
    binding: PatientBinding  # which resources are the context patient's (patient_binding.py)
    # Prefetch keys set aside because they carry a Patient that is not the context patient
    # (key -> verdict): treated as not provided, so fetched from fhirServer or reported missing.
    set_aside: Mapping[str, Verdict]
    patient_key: str | None = None  # the stored patient key, for snooze and repeat lookups

    @staticmethod
    def of(
        request: CDSRequest, service: Service, now: datetime, patient_key: str | None = None
    ) -> HookCall:
        """400 unless the service serves this hook and the context carries what it requires
        (draft orders of another patient included)."""
        hook = HOOKS.get(request.hook)
        if hook is None or request.hook not in service.definition.hooks:
            raise InvalidRequest(f"service does not serve hook {request.hook!r}")
        hook.check_context(request.context)
        prefetch = request.prefetch or {}
        binding = PatientBinding.of(
            str(request.context["patientId"]),
            [*prefetch.values(), request.context.get("draftOrders")],
        )
        drafts = hook.read_drafts(request.context, binding)
        set_aside = _set_aside(prefetch, binding)
        return HookCall(request, service, hook, drafts, now, binding, set_aside, patient_key)

    @property
    def patient_id(self) -> str:
        return str(self.request.context["patientId"])

    @property
    def encounter_id(self) -> str | None:
        encounter = self.request.context.get("encounterId")
        return encounter if isinstance(encounter, str) else None

    @property
    def prefetch(self) -> Mapping[str, Any] | None:
        """The request's prefetch without the keys set aside (see ``set_aside``)."""
        prefetch = self.request.prefetch
        if prefetch is None or not self.set_aside:
            return prefetch
        return {k: v for k, v in prefetch.items() if k not in self.set_aside}


def _set_aside(prefetch: Mapping[str, Any], binding: PatientBinding) -> dict[str, Verdict]:
    """Keys whose value holds a Patient resource that is not provably the context patient.

    Such a key answered the query for someone else (the whole chart may be another patient's):
    none of it is used, and the key is treated as not provided.
    """
    out: dict[str, Verdict] = {}
    for key, value in prefetch.items():
        for patient in _patients(unwrap_prefetch_value(value)):
            verdict = binding.resource(patient)
            if verdict != OWN:
                out[key] = verdict
                break
    return out


def _patients(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        return []
    if value.get("resourceType") == "Patient":
        return [value]
    if value.get("resourceType") != "Bundle":
        return []
    # Raw JSON: plain dict checks, no ABC isinstance on every entry of a large record.
    resources = (e.get("resource") for e in value.get("entry") or () if isinstance(e, dict))
    return [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Patient"]
