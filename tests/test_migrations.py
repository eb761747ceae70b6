from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from controller import tables  # noqa: F401 - registers the tables
from controller.db import Database, alembic_config


def test_migrations_build_exactly_the_schema_the_models_declare(db_url):
    Database(db_url).migrate()
    engine = create_engine(Database(db_url).url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_migrations_go_down_to_nothing_and_up_again(db_url):
    database = Database(db_url)
    database.migrate()
    command.downgrade(alembic_config(db_url), "base")
    assert [t for t in inspect(database.engine).get_table_names() if t != "alembic_version"] == []
    database.migrate()
    assert "transitions" in inspect(database.engine).get_table_names()
    database.dispose()


def test_migrating_twice_changes_nothing(db_url):
    database = Database(db_url)
    database.migrate()
    database.migrate()
    assert "instances" in inspect(database.engine).get_table_names()
    database.dispose()
