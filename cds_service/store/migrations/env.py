"""Alembic environment: runs on the connection migrate() passes, or on $CDS_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from cds_service.store.connect import create_store_engine


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        # migrate(): the caller's transaction holds the migration lock.
        context.configure(connection=connection, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_store_engine(os.environ["CDS_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            context.configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")
run_migrations_online()
