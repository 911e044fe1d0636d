"""Table definitions the store queries (SQLAlchemy Core); migrations/ creates them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out.

    PostgreSQL keeps ``timestamptz``. SQLite has no time zones: values are stored as naive UTC
    text, which also keeps string comparison in SQL chronological.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("naive datetime: the store needs timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

# One row per card returned to an EHR. patient_key is an HMAC, never a patient id. client_iss
# and client_tenant name the verified client it was returned to ("" and "" without a token; rows
# from before tenancy were given that anonymous identity by migration 0002).
issued_card = sa.Table(
    "issued_card",
    metadata,
    sa.Column("card_uuid", sa.String(), primary_key=True),
    sa.Column("service_id", sa.String(), nullable=False),
    sa.Column("hook", sa.String(), nullable=False),
    sa.Column("hook_instance", sa.String(), nullable=False),
    sa.Column("rule_id", sa.String(), nullable=False),
    sa.Column("rule_version", sa.Integer(), nullable=False),
    sa.Column("topic", sa.String(), nullable=False),
    sa.Column("indicator", sa.String(), nullable=False),
    sa.Column("issued_at", UTCDateTime(), nullable=False),
    sa.Column("patient_key", sa.String(64), nullable=False),
    sa.Column("draft_key", sa.String(), nullable=True),
    sa.Column("client_iss", sa.String(), nullable=False),
    sa.Column("client_tenant", sa.String(), nullable=False),
)

issued_suggestion = sa.Table(
    "issued_suggestion",
    metadata,
    sa.Column("card_uuid", sa.String(), primary_key=True),
    sa.Column("suggestion_uuid", sa.String(), primary_key=True),
    sa.Column("suggestion_key", sa.String(), nullable=False),
)

# feedback_key is a hash of what makes two feedback items "the same" (see sql.feedback_key):
# the primary key makes a repeated POST an insert-or-ignore, even from concurrent requests.
# client_iss and client_tenant name the client that sent it: it acts only on that client's cards.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("feedback_key", sa.String(64), primary_key=True),
    sa.Column("service_id", sa.String(), nullable=False),
    sa.Column("card_uuid", sa.String(), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("outcome_timestamp", UTCDateTime(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("override_system", sa.String(), nullable=True),
    sa.Column("override_code", sa.String(), nullable=True),
    sa.Column("user_comment", sa.Text(), nullable=True),
    sa.Column("unknown_card", sa.Boolean(), nullable=False),
    sa.Column("client_iss", sa.String(), nullable=False),
    sa.Column("client_tenant", sa.String(), nullable=False),
)

feedback_suggestion = sa.Table(
    "feedback_suggestion",
    metadata,
    sa.Column("feedback_key", sa.String(64), primary_key=True),
    sa.Column("suggestion_uuid", sa.String(), primary_key=True),
    sa.Column("card_uuid", sa.String(), nullable=False),
)

sa.Index("ix_issued_card_patient_topic", issued_card.c.patient_key, issued_card.c.topic)
sa.Index("ix_issued_card_issued_at", issued_card.c.issued_at)
sa.Index("ix_feedback_card_uuid", feedback.c.card_uuid)
sa.Index("ix_feedback_received_at", feedback.c.received_at)
