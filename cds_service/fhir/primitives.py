"""fhir_core's date, time and decimal types, with their usual values validated natively.

fhir_core checks a ``dateTime``, ``date``, ``instant``, ``time`` or ``decimal`` in Python (a
regex, then pydantic's parser, then a few conversions): a third of what a read view cost
(:mod:`cds_service.fhir.views`). Each type here first tries plain pydantic-core
schemas for the forms almost every value takes (a JSON number for a decimal; a partial date,
a full date or a date-time without a leap second), each guarded by a regex that admits only
values fhir_core accepts and turns into exactly the same Python value. Anything else (a
leap second, a decimal given as a string, a value of another type, a malformed one) goes to
fhir_core's own validator, which decides as it always did. So the accepted values, the
rejected ones and the results are fhir_core's (``tests/test_fhir_primitives.py``).
"""

from __future__ import annotations

import datetime
import decimal
from dataclasses import dataclass, field
from typing import Annotated, Any

import fhir_core.types as fhir
from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema
from pydantic_core import core_schema as cs

__all__ = ["DateTimeType", "DateType", "DecimalType", "InstantType", "TimeType"]

# The pieces of fhir_core's date and time regexes, without a leap second (a second of 60
# stays a string in fhir_core, so it takes the slow path). pydantic-core's regexes search:
# every pattern is anchored, and ``$`` in its (Rust) regex engine matches only at the very end.
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_MONTH = r"(0[1-9]|1[0-2])"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
_ZONE = r"(Z|[+\-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"

PARTIAL_DATE = f"^{_YEAR}(-{_MONTH})?$"  # kept as the string itself
FULL_DATE = f"^{_YEAR}-{_MONTH}-{_DAY}$"  # a date
DATE_TIME = f"^{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_ZONE}$"  # a datetime with its time zone
TIME = f"^{_TIME}$"  # a time


def _matching(pattern: str, then: CoreSchema | None = None) -> CoreSchema:
    """A string (a ``str`` only, nothing converted to one) matching ``pattern``, given to
    ``then`` when there is one."""
    text = cs.str_schema(pattern=pattern, strict=True)
    return text if then is None else cs.chain_schema([text, then])


@dataclass(frozen=True)
class NativeFirst:
    """``Annotated`` metadata: try the ``fast`` schemas in order, then ``fhir_type``'s own
    validation. Serialised as fhir_core serialises the type."""

    fhir_type: Any
    fast: tuple[CoreSchema, ...] = field(compare=False)  # dicts: hashed by fhir_type alone

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        full = handler.generate_schema(self.fhir_type)
        schema = cs.union_schema([*self.fast, full], mode="left_to_right")
        if "serialization" in full:
            schema["serialization"] = full["serialization"]
        return schema


DateTimeType = Annotated[
    datetime.datetime,
    NativeFirst(
        fhir.DateTimeType,
        (
            _matching(DATE_TIME, cs.datetime_schema()),
            _matching(FULL_DATE, cs.date_schema()),
            _matching(PARTIAL_DATE),
        ),
    ),
]
DateType = Annotated[
    datetime.date,
    NativeFirst(fhir.DateType, (_matching(FULL_DATE, cs.date_schema()), _matching(PARTIAL_DATE))),
]
InstantType = Annotated[
    datetime.datetime, NativeFirst(fhir.InstantType, (_matching(DATE_TIME, cs.datetime_schema()),))
]
TimeType = Annotated[
    datetime.time, NativeFirst(fhir.TimeType, (_matching(TIME, cs.time_schema()),))
]
# A JSON number: an int (never a bool), or a float as it is (a strict float schema would
# turn 5, or Decimal('-0'), into a float); pydantic's decimal makes each as fhir_core does:
# Decimal(5), Decimal(str(10.5)).
DecimalType = Annotated[
    decimal.Decimal,
    NativeFirst(
        fhir.DecimalType,
        (
            cs.chain_schema([cs.int_schema(strict=True), cs.decimal_schema()]),
            cs.chain_schema([cs.is_instance_schema(float), cs.decimal_schema()]),
        ),
    ),
]
