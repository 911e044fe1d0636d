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
from cds_service.hook_table import HOOKS, HookSpec
from cds_service.patient_binding import OWN, PatientBinding, Verdict, patient_entries
from cds_service.tenancy import SnoozeScope


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
    # Client, tenant and stored patient key, for snooze and repeat lookups (None: no lookups).
    scope: SnoozeScope | None = None

    @staticmethod
    def of(
        request: CDSRequest, service: Service, now: datetime, scope: SnoozeScope | None = None
    ) -> HookCall:
        """400 unless the service serves this hook and the context carries what it requires
        (draft orders of another patient included)."""
        hook = HOOKS.get(request.hook)
        if hook is None or request.hook not in service.definition.hooks:
            raise InvalidRequest("service does not serve this hook (see the discovery document)")
        hook.check_context(request.context)
        prefetch = request.prefetch or {}
        patients = {key: patient_entries(value) for key, value in prefetch.items()}
        urls: dict[str, str | None] = {}
        for found in [*patients.values(), patient_entries(request.context.get("draftOrders"))]:
            for url, patient in found:
                if url is not None:
                    rid = patient.get("id")
                    urls[url] = rid if isinstance(rid, str) else None
        binding = PatientBinding(str(request.context["patientId"]), urls)
        drafts = hook.read_drafts(request.context, binding)
        set_aside = _set_aside(patients, binding)
        return HookCall(request, service, hook, drafts, now, binding, set_aside, scope)

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


def _set_aside(
    patients: Mapping[str, list[tuple[str | None, Mapping[str, Any]]]], binding: PatientBinding
) -> dict[str, Verdict]:
    """Keys whose value holds a Patient resource that is not provably the context patient.

    Such a key answered the query for someone else (the whole chart may be another patient's):
    none of it is used, and the key is treated as not provided.
    """
    out: dict[str, Verdict] = {}
    for key, found in patients.items():
        for _, patient in found:
            verdict = binding.resource(patient)
            if verdict != OWN:
                out[key] = verdict
                break
    return out
