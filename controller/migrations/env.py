"""Alembic environment: runs migrations against the URL set by ``controller.db.alembic_config``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from controller import tables  # noqa: F401 - registers the tables on SQLModel.metadata
from sqlmodel import SQLModel

MIGRATION_LOCK_KEY = 0x6561_6973  # "eais": the advisory lock replicas take to migrate one at a time
config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":  # replicas starting together migrate one after another
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
