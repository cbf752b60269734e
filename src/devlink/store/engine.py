"""The two engines behind one code path; each dialect difference gets one function here.

SQLite is the embedded default (WAL, so the web process reads while a sync
writes); PostgreSQL (psycopg 3) is the scale-out store.  Everything else in
devlink is written once against SQLAlchemy Core/ORM.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from devlink.errors import ConfigError

__all__ = ["insert_ignore", "make_engine", "make_sessionmaker"]


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``, with SQLite pragmas set on every connection."""
    try:
        if url.startswith("sqlite"):
            return _sqlite_engine(url)
        if url.startswith("postgresql"):
            if url.startswith(("postgresql://", "postgres://")):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    except ArgumentError as exc:
        raise ConfigError(f"DEVLINK_DATABASE_URL is not a valid database URL: {exc}") from None
    raise ConfigError(
        "DEVLINK_DATABASE_URL must start with sqlite:/// or postgresql+psycopg://",
        hint="leave it empty for the embedded SQLite database",
    )


def _sqlite_engine(url: str) -> Engine:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def insert_ignore(
    connection: Connection | Session,
    table: Table,
    rows: Iterable[Mapping[str, Any]],
    conflict_columns: list[str],
) -> int:
    """Insert ``rows``, skipping those that collide on ``conflict_columns``; return rows inserted.

    Uniqueness is the lock: callers never check first and insert after.
    """
    rows = list(rows)
    if not rows:
        return 0
    dialect = connection.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    result = connection.execute(statement, rows)
    return max(int(getattr(result, "rowcount", 0) or 0), 0)
