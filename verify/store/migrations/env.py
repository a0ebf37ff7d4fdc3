"""Alembic environment: runs on the connection that Database.upgrade hands over."""

from alembic import context

from verify.store import models  # noqa: F401  (registers the tables)
from sqlmodel import SQLModel

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `verify db upgrade`")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
