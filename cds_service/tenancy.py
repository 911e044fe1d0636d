"""Who a card was issued to: the verified client and tenant that scope every stored card,
feedback and snooze (docs/tenancy.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """The verified JWT issuer (``iss``) and its ``tenant`` claim ("" when the token has none).

    Unauthenticated calls (``CDS_AUTH=off``, or ``optional`` without a token) are all
    :data:`ANONYMOUS`: one tenant of their own, never equal to a verified issuer (the clients
    file refuses an empty ``iss``).
    """

    iss: str
    tenant: str = ""


ANONYMOUS = ClientIdentity(iss="", tenant="")


@dataclass(frozen=True, slots=True)
class SnoozeScope:
    """What a snooze and the order-sign repeat check are scoped by: the client identity and the
    patient key (an HMAC of ``fhirServer`` and the patient id, store.patient_key). Holds no
    patient id, so it may be logged as a count or published between replicas."""

    client: ClientIdentity
    patient_key: str

    def encode(self) -> str:
        """A string for the other replicas (api/snooze_bus.py); ``decode`` reads it back."""
        return json.dumps([self.client.iss, self.client.tenant, self.patient_key])

    @staticmethod
    def decode(text: str) -> SnoozeScope | None:
        """The scope ``encode`` wrote, or None for anything else."""
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not (isinstance(value, list) and len(value) == 3):
            return None
        if not all(isinstance(part, str) for part in value):
            return None
        iss, tenant, patient_key = value
        return SnoozeScope(ClientIdentity(iss, tenant), patient_key)
