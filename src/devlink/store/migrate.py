"""Bring a database to the newest schema with Alembic, from code (no alembic.ini needed).

    devlink migrate          # what `devlink serve` and every command do on start

Every command checks the schema on start, so the check must cost nothing when
there is nothing to do: ``upgrade`` reads the ``alembic_version`` row with
one plain query and compares it with the head revision read from the
migration files' ``revision = ...`` / ``down_revision = ...`` lines (the same
lines Alembic reads; a test checks both agree).  Alembic (a quarter of a
second of imports) is loaded only when the database is behind, is new, or is
in a state the fast path does not understand (several heads, an unknown
revision): then Alembic decides, exactly as before.
"""

from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from devlink.store.revisions import MIGRATIONS, head_revision

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["current_revision", "head_revision", "upgrade"]


def alembic_config(engine: Engine) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def current_revision(engine: Engine) -> str | None:
    """The revision the database says it is at; None when it has no (single) ``alembic_version`` row."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:  # no such table: a new database
        return None
    return rows[0] if len(rows) == 1 else None


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied; safe, and cheap when there is none, to run on each start."""
    head = head_revision()
    if head is not None and current_revision(engine) == head:
        return
    from alembic import command

    command.upgrade(alembic_config(engine), "head")
