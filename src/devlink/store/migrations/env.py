"""Alembic environment: runs against the engine devlink hands over in ``config.attributes``."""

from alembic import context
from sqlalchemy import Engine

import devlink.store.people
import devlink.store.tracker  # noqa: F401  (registers the tracker tables on Base.metadata)
from devlink.store.models import Base

engine: Engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
