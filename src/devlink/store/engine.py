"""The two engines behind one code path; each dialect difference gets one function here.

SQLite is the embedded default (WAL, so the web process reads while a sync
writes); PostgreSQL (psycopg 3) is the scale-out store.  Everything else in
devlink is written once against SQLAlchemy Core/ORM.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from devlink.errors import ConfigError

__all__ = ["insert_ignore", "insert_tuples_ignore", "make_engine", "make_sessionmaker"]


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
    """Insert ``rows`` (dicts with the same keys), skipping those that collide on ``conflict_columns``.

    Returns how many rows were inserted.  Uniqueness is the lock: callers never
    check first and insert after.
    """
    rows = list(rows)
    if not rows:
        return 0
    columns = list(rows[0].keys())
    return insert_tuples_ignore(connection, table, columns, [tuple(row.values()) for row in rows], conflict_columns)


def insert_tuples_ignore(
    connection: Connection | Session,
    table: Table,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    conflict_columns: list[str],
) -> int:
    """The bulk path of ``insert_ignore``: rows as tuples in ``columns`` order.

    A backfill writes through here, so it hands the driver one
    ``executemany`` of plain tuples: column types still convert values (their
    bind processors run), but SQLAlchemy's per-row statement machinery, which
    cost more than the database itself, is skipped.  ``INSERT … ON CONFLICT
    (…) DO NOTHING`` reads the same on SQLite and PostgreSQL; only the
    parameter style differs.
    """
    if not rows:
        return 0
    bind = connection.connection() if isinstance(connection, Session) else connection
    dialect = bind.dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))}) "
        f"ON CONFLICT ({', '.join(conflict_columns)}) DO NOTHING"
    )
    processors = [
        (index, proc)
        for index, name in enumerate(columns)
        if (proc := table.c[name].type.bind_processor(dialect)) is not None
    ]
    if processors:
        converted = []
        for row in rows:
            values = list(row)
            for index, proc in processors:
                values[index] = proc(values[index])
            converted.append(tuple(values))
        result = bind.exec_driver_sql(sql, converted)
    else:
        result = bind.exec_driver_sql(sql, rows)
    return max(int(result.rowcount or 0), 0)
