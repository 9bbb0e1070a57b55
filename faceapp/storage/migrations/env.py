"""Alembic environment of the identity store.

FaceApp runs migrations programmatically (``faceapp.storage.migrate``) and hands over an open connection
inside a transaction through ``config.attributes["connection"]``; then every revision runs in that one
transaction (SQLite DDL is transactional here because the engine emits BEGIN itself). Used from the
``alembic`` command instead, ``sqlalchemy.url`` (or $FACEAPP_DB) names the database, and ``--sql`` prints
the DDL for a DBA (offline mode).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from faceapp.storage.schema import Base

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,        # SQLite ALTER TABLE goes through table copies
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    from faceapp.storage.engine import create_store_engine, parse_url, resolve_url

    url = resolve_url(config.get_main_option("sqlalchemy.url"))
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = create_store_engine(parse_url(url))
    try:
        with engine.connect() as connection:
            _configure(connection)
            connection.commit()
    finally:
        engine.dispose()


run()
