"""One hook call as the engine sees it: the request checked against its service and hook."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds_service.catalog import Service
from cds_service.cdshooks import CDSRequest
from cds_service.drafts import DraftOrders
from cds_service.errors import InvalidRequest
from cds_service.hook_table import HOOKS, HookSpec


@dataclass(frozen=True)
class HookCall:
    request: CDSRequest
    service: Service
    hook: HookSpec
    drafts: DraftOrders  # the order hooks' draft orders and focus; empty for patient-view
    now: datetime  # the evaluation time: every date judgement is made against it
    patient_key: str | None = None  # the stored patient key, for snooze and repeat lookups

    @staticmethod
    def of(
        request: CDSRequest, service: Service, now: datetime, patient_key: str | None = None
    ) -> HookCall:
        """400 unless the service serves this hook and the context carries what it requires."""
        hook = HOOKS.get(request.hook)
        if hook is None or request.hook not in service.definition.hooks:
            raise InvalidRequest(f"service does not serve hook {request.hook!r}")
        hook.check_context(request.context)
        return HookCall(request, service, hook, hook.read_drafts(request.context), now, patient_key)

    @property
    def patient_id(self) -> str:
        return str(self.request.context["patientId"])

    @property
    def encounter_id(self) -> str | None:
        encounter = self.request.context.get("encounterId")
        return encounter if isinstance(encounter, str) else None
