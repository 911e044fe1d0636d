"""What every record parser reads besides the record: knowledge, parameters, the local day."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, tzinfo

from cds_service.exposure.measurements import BodyMeasurements, BodyWindows
from cds_service.exposure.summary import ExposureParams
from cds_service.fhir.views import Medication
from cds_service.medications import GlucocorticoidKnowledge


@dataclass(frozen=True)
class Context:
    knowledge: GlucocorticoidKnowledge
    params: ExposureParams
    medications: Mapping[str, Medication]  # "Medication/<id>" -> Medication
    tz: tzinfo | None  # ``now``'s offset: datetimes become local days in it
    today: date
    body: BodyMeasurements = field(default_factory=BodyMeasurements)

    @property
    def windows(self) -> BodyWindows:
        return self.params.body_windows
