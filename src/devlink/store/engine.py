"""The two engines behind one code path; each dialect difference gets one function here.

SQLite is the embedded default (WAL, so the web process reads while a sync
writes); PostgreSQL (psycopg 3) is the scale-out store.  Everything else in
devlink is written once against SQLAlchemy Core/ORM.
"""

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from devlink.crypto import private_file
from devlink.errors import ConfigError
from devlink.store.models import UTCDateTime

log = logging.getLogger(__name__)

__all__ = [
    "background_checkpoints",
    "insert_ignore",
    "insert_tuples_ignore",
    "insert_tuples_returning",
    "make_engine",
    "make_sessionmaker",
    "prefers_insert_returning",
]


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``, with SQLite pragmas set on every connection."""
    try:
        if url.startswith("sqlite"):
            return _sqlite_engine(url)
        if url.startswith(("postgresql", "postgres://")):
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
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    path = engine.url.database or ""
    if path and path != ":memory:" and not path.startswith("file:"):
        # commits and encrypted credentials: 0600 whatever the umask, its -wal and -shm follow (crypto.py)
        private_file(Path(path), sqlite=True)  # the path SQLite opens, as written

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


@contextmanager
def background_checkpoints(engine: Engine) -> Iterator[Callable[[], None]]:
    """Checkpoint SQLite's write-ahead log on a thread while a bulk write runs.

    Yields the function to call after each committed batch.  In WAL mode, the
    commit that takes the log past ``wal_autocheckpoint`` pages also copies it
    into the database and waits for two fsyncs: a third of a backfill's
    database time, with the GIL held by nobody and the second core idle.  A
    ``PASSIVE`` checkpoint from another connection after each batch does that
    work beside the writer instead, so the writer's log rarely reaches the
    threshold.  Nothing else changes: a passive checkpoint never blocks a
    writer or a reader, and the writer still checkpoints itself if this thread
    falls behind or fails.  A no-op on PostgreSQL and for in-memory SQLite.
    """
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:") or "mode=memory" in database:
        yield _do_nothing
        return
    wanted = threading.Event()
    stopping = threading.Event()

    def run() -> None:
        try:
            with engine.connect() as connection:
                while True:
                    wanted.wait()
                    wanted.clear()
                    if stopping.is_set():
                        return
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
        except Exception:  # the writer's own checkpoints take over
            log.warning("sqlite.checkpoint_failed", exc_info=True)

    thread = threading.Thread(target=run, name="sqlite-checkpoint", daemon=True)
    thread.start()
    try:
        yield wanted.set
    finally:
        stopping.set()
        wanted.set()
        thread.join()


def _do_nothing() -> None:
    pass


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

    A backfill writes through here, so the driver gets plain values in as few
    calls as it takes (see ``_insert_statements``): column types still convert
    values (see ``_driver_columns``), but SQLAlchemy's per-row statement machinery,
    which cost more than the database itself, is skipped.
    """
    inserted = 0
    for result in _insert_statements(connection, table, columns, rows, conflict_columns, ""):
        inserted += max(int(result.rowcount or 0), 0)
    return inserted


def prefers_insert_returning(connection: Connection | Session) -> bool:
    """Whether ``insert_tuples_returning`` beats an insert and a lookup here: on SQLite 3.35+.

    It works on PostgreSQL too, but psycopg parses the placeholders of a long
    multi-row statement in Python, slower than the lookup it saves.
    """
    bind = connection.connection() if isinstance(connection, Session) else connection
    return bind.dialect.name == "sqlite" and bool(bind.dialect.insert_returning)


def insert_tuples_returning(
    connection: Connection | Session,
    table: Table,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    conflict_columns: list[str],
    returning: list[str],
) -> list[tuple[Any, ...]]:
    """``insert_tuples_ignore`` that returns the ``returning`` columns of the rows it inserted.

    Rows skipped on a conflict are not returned, so ``len()`` of the answer is
    the number inserted: the ids of new rows come back without a second query.
    Needs ``INSERT … RETURNING`` (SQLite 3.35+, PostgreSQL).
    """
    returned: list[tuple[Any, ...]] = []
    clause = f" RETURNING {', '.join(returning)}"
    for result in _insert_statements(connection, table, columns, rows, conflict_columns, clause):
        returned.extend(result.cursor.fetchall())  # plain tuples: no Row objects to build
        result.close()
    return returned


_STATEMENT_ROWS = 500  # rows per multi-row INSERT: larger statements are no faster to run


def _insert_statements(
    connection: Connection | Session,
    table: Table,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    conflict_columns: list[str],
    returning: str,
) -> Iterator[CursorResult[Any]]:
    """Run ``INSERT … VALUES (…) ON CONFLICT (…) DO NOTHING{returning}`` for ``rows``; yield each result.

    The statement reads the same on SQLite and PostgreSQL; the parameter
    style differs, and so does the fastest way to send many rows.  SQLite runs
    multi-row ``VALUES (…), (…), …`` statements (within its limit of bind
    parameters) faster than an ``executemany`` (issue links: by a quarter).
    psycopg would parse such long statements in Python at every call; its
    ``executemany`` pipelines one-row statements instead, three times faster
    (but it cannot return rows, so ``returning`` takes the multi-row form on
    every engine).
    """
    if not rows:
        return
    bind = connection.connection() if isinstance(connection, Session) else connection
    dialect = bind.dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    one_row = f"({', '.join([marker] * len(columns))})"
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    tail = f" ON CONFLICT ({', '.join(conflict_columns)}) DO NOTHING{returning}"
    by_column = _driver_columns(dialect, table, columns, rows)
    if dialect.name != "sqlite" and not returning:
        yield bind.exec_driver_sql(head + one_row + tail, list(zip(*by_column, strict=True)))
        return
    per_statement = max(1, min(_STATEMENT_ROWS, dialect.insertmanyvalues_max_parameters // len(columns)))
    for start in range(0, len(rows), per_statement):
        chunk = [column[start : start + per_statement] for column in by_column]
        sql = head + ", ".join([one_row] * len(chunk[0])) + tail
        yield bind.exec_driver_sql(sql, tuple(chain.from_iterable(zip(*chunk, strict=True))))


def _driver_columns(
    dialect: Dialect, table: Table, columns: list[str], rows: list[tuple[Any, ...]]
) -> list[Sequence[Any]]:
    """``rows`` as columns, each value converted by its column type as SQLAlchemy would before the driver.

    One ``map`` per typed column.  ``UTCDateTime`` values take a shortcut with
    the same result as the type's bind processor followed by the driver's own
    adaptation (see ``_utc_converter``).
    """
    by_column: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for index, name in enumerate(columns):
        column_type = table.c[name].type
        if type(column_type) is UTCDateTime:
            by_column[index] = list(map(_utc_converter(column_type, dialect), by_column[index]))
        elif (processor := column_type.bind_processor(dialect)) is not None:
            by_column[index] = list(map(processor, by_column[index]))
    return by_column


def _utc_converter(column_type: UTCDateTime, dialect: Dialect) -> Callable[[Any], Any]:
    """The bind conversion of a ``UTCDateTime`` value, fast for the usual aware UTC datetime.

    PostgreSQL (psycopg) takes aware datetimes, and the type's processor
    (``astimezone(UTC)``) leaves a UTC one as it is, so those go through
    untouched.  On SQLite the driver stores a datetime as ``isoformat(" ")``
    (the ``sqlite3`` module's default adapter), which is slow; the same text is
    built here from cached parts for whole-second UTC values (every commit
    date), and once per run of the same value otherwise (a batch's
    ``first_seen_at``).
    """
    processor = column_type.bind_processor(dialect)
    assert processor is not None
    process: Callable[[Any], Any] = processor
    if dialect.name != "sqlite":

        def convert(value: Any) -> Any:
            if value.__class__ is datetime and value.tzinfo is UTC:
                return value
            return process(value)

        return convert

    days = _UTC_DAYS
    last: list[Any] = [_NOTHING, None]  # the last value that took the slow path, and its text

    def convert_sqlite(value: Any) -> Any:
        if value.__class__ is datetime and value.tzinfo is UTC and not value.microsecond:
            day = days.get(ordinal := value.toordinal())
            if day is None:
                if len(days) >= 100_000:  # some 270 years of distinct days: keep the cache bounded
                    days.clear()
                day = days[ordinal] = value.isoformat(" ")[:11]  # "2024-10-24 "
            return day + _HOURS_MINUTES[value.hour * 60 + value.minute] + _SECONDS_UTC[value.second]
        if value is not last[0]:
            converted = process(value)
            last[:] = value, converted.isoformat(" ") if isinstance(converted, datetime) else converted
        return last[1]

    return convert_sqlite


_NOTHING = object()
_UTC_DAYS: dict[int, str] = {}  # date.toordinal() -> "2024-10-24 "
_HOURS_MINUTES = [f"{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60)]
_SECONDS_UTC = [f"{second:02d}+00:00" for second in range(60)]
