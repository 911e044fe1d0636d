"""Issued cards, their suggestions, feedback and accepted suggestions.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Timestamps: timestamptz on PostgreSQL, naive UTC text on SQLite (store.tables.UTCDateTime).
    op.create_table(
        "issued_card",
        sa.Column("card_uuid", sa.String(), primary_key=True),
        sa.Column("service_id", sa.String(), nullable=False),
        sa.Column("hook", sa.String(), nullable=False),
        sa.Column("hook_instance", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("indicator", sa.String(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("patient_key", sa.String(64), nullable=False),
        sa.Column("draft_key", sa.String(), nullable=True),
    )
    op.create_index("ix_issued_card_patient_topic", "issued_card", ["patient_key", "topic"])
    op.create_index("ix_issued_card_issued_at", "issued_card", ["issued_at"])
    op.create_table(
        "issued_suggestion",
        sa.Column("card_uuid", sa.String(), primary_key=True),
        sa.Column("suggestion_uuid", sa.String(), primary_key=True),
        sa.Column("suggestion_key", sa.String(), nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("feedback_key", sa.String(64), primary_key=True),
        sa.Column("service_id", sa.String(), nullable=False),
        sa.Column("card_uuid", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("override_system", sa.String(), nullable=True),
        sa.Column("override_code", sa.String(), nullable=True),
        sa.Column("user_comment", sa.Text(), nullable=True),
        sa.Column("unknown_card", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"])
    op.create_table(
        "feedback_suggestion",
        sa.Column("feedback_key", sa.String(64), primary_key=True),
        sa.Column("suggestion_uuid", sa.String(), primary_key=True),
        sa.Column("card_uuid", sa.String(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feedback_suggestion")
    op.drop_table("feedback")
    op.drop_table("issued_suggestion")
    op.drop_table("issued_card")
