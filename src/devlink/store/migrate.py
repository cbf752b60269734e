"""Bring a database to the newest schema with Alembic, from code (no alembic.ini needed).

    devlink migrate          # what `devlink serve` and every command do on start
"""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

__all__ = ["upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied; safe to run on each start."""
    command.upgrade(alembic_config(engine), "head")
