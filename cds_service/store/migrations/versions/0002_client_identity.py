"""Tenancy: the client (issuer and tenant claim) of every issued card and feedback item.

Rows stored before this revision get the anonymous identity ("", ""): the identity of calls
without a token (``CDS_AUTH=off``), so a service that ran without authentication keeps its
snoozes, while a service that ran with ``CDS_AUTH=required`` starts its verified clients with
none (cards are shown again: the safe side). Their feedback keys need no rewrite: the anonymous
identity adds nothing to the key (store.sql.feedback_key). See docs/tenancy.md.

The columns get no server default once filled: every insert names its client.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

TABLES = ("issued_card", "feedback")
COLUMNS = ("client_iss", "client_tenant")


def upgrade() -> None:
    for table in TABLES:
        # Two steps: SQLite adds a column with a default in place, and dropping the default
        # then copies the table (Alembic batch mode); PostgreSQL alters both in place.
        with op.batch_alter_table(table) as batch:
            for column in COLUMNS:
                batch.add_column(sa.Column(column, sa.String(), nullable=False, server_default=""))
        with op.batch_alter_table(table) as batch:
            for column in COLUMNS:
                batch.alter_column(column, existing_type=sa.String(), server_default=None)


def downgrade() -> None:
    # Loses the identities: afterwards every client's feedback acts on every client's cards.
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in reversed(COLUMNS):
                batch.drop_column(column)
