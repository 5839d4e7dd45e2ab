"""Alembic environment: runs on the connection that dockyard.metadata.migrate hands over."""

from alembic import context

from dockyard.metadata.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` run by hand: build an engine from the configured URL
    import sqlalchemy as sa

    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
