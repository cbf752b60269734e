"""Run syncs safely: one at a time per repository, requests coalesced, failures recorded.

The lock is a conditional UPDATE on the repository row (works the same on
SQLite and PostgreSQL, across any number of processes):

* ``request_sync`` — while a sync runs, a request sets ``sync_pending`` and
  enqueues nothing; while a soft sync is already queued, a soft request is
  absorbed by it.  Otherwise it marks the row ``queued`` and enqueues a job.
* ``run_sync`` — takes the lock (``running``), syncs, then either clears
  ``sync_pending`` and runs one follow-up soft sync, or releases the lock.  The
  release only succeeds while nothing is pending, so a request that lands
  between the last check and the release is never lost.
* A heartbeat thread keeps the lock fresh; a lock whose heartbeat is older than
  ``STALE_AFTER`` belonged to a crashed worker and may be taken over.
"""

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Update, or_, select, update
from sqlalchemy.orm import Session

from devlink.errors import DevlinkError
from devlink.runtime import Runtime
from devlink.store.models import Repository, utcnow
from devlink.sync.engine import Progress, SyncResult, sync_repository

__all__ = ["STALE_AFTER", "request_sync", "run_sync", "schedule_due"]

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=5)
HEARTBEAT_EVERY = 30.0  # seconds
QUEUED_FRESH = timedelta(minutes=15)  # a queued job older than this may have been lost: enqueue again

Enqueue = Callable[[int, bool, str], None]


def _changed(session: Session, statement: Update) -> int:
    """Run a conditional UPDATE and return how many rows it changed: the lock primitive."""
    result = session.execute(statement)
    return int(cast(CursorResult[Any], result).rowcount)


def request_sync(rt: Runtime, repository_id: int, *, full: bool, trigger: str, enqueue: Enqueue) -> str:
    """Ask for a sync; return ``coalesced`` or ``queued``.  Never runs the sync itself.

    A request is folded into a sync that is running (as one follow-up soft
    sync) or, when soft, into one already queued (soft or full).  A lock whose
    heartbeat went stale belongs to a crashed worker: the request is queued,
    and the job takes the lock over.
    """
    now = utcnow()
    alive = Repository.sync_heartbeat_at >= now - STALE_AFTER
    with rt.sessions.begin() as session:
        running = _changed(
            session,
            update(Repository)
            .where(Repository.id == repository_id, Repository.sync_state == "running", alive)
            .values(sync_pending=True),
        )
        if running:
            return "coalesced"
        if not full:
            absorbed = _changed(
                session,
                update(Repository)
                .where(
                    Repository.id == repository_id,
                    Repository.sync_state == "queued",
                    Repository.sync_heartbeat_at > now - QUEUED_FRESH,
                )
                .values(sync_heartbeat_at=Repository.sync_heartbeat_at),
            )
            if absorbed:
                return "coalesced"
        _changed(
            session,
            update(Repository)
            .where(Repository.id == repository_id, or_(Repository.sync_state != "running", ~alive))
            .values(sync_state="queued", sync_kind="full" if full else "soft", sync_heartbeat_at=now),
        )
    enqueue(repository_id, full, trigger)
    return "queued"


def _acquire(rt: Runtime, repository_id: int, kind: str) -> bool:
    now = utcnow()
    with rt.sessions.begin() as session:
        return bool(
            _changed(
                session,
                update(Repository)
                .where(
                    Repository.id == repository_id,
                    or_(Repository.sync_state != "running", Repository.sync_heartbeat_at < now - STALE_AFTER),
                )
                .values(
                    sync_state="running", sync_kind=kind, sync_started_at=now, sync_finished_at=None,
                    sync_heartbeat_at=now, sync_progress=0,
                )
            )
        )


def _mark_pending(rt: Runtime, repository_id: int) -> bool:
    with rt.sessions.begin() as session:
        return bool(
            _changed(
                session,
                update(Repository)
                .where(Repository.id == repository_id, Repository.sync_state == "running")
                .values(sync_pending=True)
            )
        )


def _take_pending(rt: Runtime, repository_id: int) -> bool:
    with rt.sessions.begin() as session:
        return bool(
            _changed(
                session,
                update(Repository)
                .where(Repository.id == repository_id, Repository.sync_pending.is_(True))
                .values(sync_pending=False, sync_kind="soft", sync_started_at=utcnow(), sync_progress=0)
            )
        )


def _release(rt: Runtime, repository_id: int, failed: bool, retry_after: float | None = None) -> bool:
    """Give the lock back unless a follow-up is pending; a repository removed meanwhile counts as released.

    The next scheduled sync comes after the interval, or after the wait a host
    asked for (rate limit, outage) when the run failed with one or deferred work to it.
    """
    now = utcnow()
    wait = timedelta(seconds=retry_after) if retry_after else timedelta(minutes=rt.settings.sync_interval)
    with rt.sessions.begin() as session:
        released = _changed(
            session,
            update(Repository)
            .where(Repository.id == repository_id, Repository.sync_pending.is_(False))
            .values(
                sync_state="failed" if failed else "idle",
                sync_finished_at=now,
                next_sync_at=now + wait,
            ),
        )
        return bool(released) or session.get(Repository, repository_id) is None


def _record(rt: Runtime, repository_id: int, error: DevlinkError | None) -> None:
    with rt.sessions.begin() as session:
        values = (
            {"last_error_reason": None, "last_error_message": None, "last_error_at": None}
            if error is None
            else {"last_error_reason": error.reason, "last_error_message": error.message, "last_error_at": utcnow()}
        )
        session.execute(update(Repository).where(Repository.id == repository_id).values(**values))


class _Heartbeat:
    """Refresh the lock's heartbeat while a sync runs, so no one takes it over."""

    def __init__(self, rt: Runtime, repository_id: int) -> None:
        self._rt, self._id = rt, repository_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{repository_id}", daemon=True)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY):
            try:
                with self._rt.sessions.begin() as session:
                    _changed(
                        session,
                        update(Repository).where(Repository.id == self._id).values(sync_heartbeat_at=utcnow())
                    )
            except Exception:  # a missed beat is harmless; the next one retries
                log.warning("sync.heartbeat_failed repository=%s", self._id, exc_info=True)


def run_sync(
    rt: Runtime, repository_id: int, *, full: bool, trigger: str = "soft", progress: Progress | None = None
) -> list[SyncResult]:
    """Run a sync under the repository's lock, then any follow-up that was requested meanwhile.

    Returns the results of the runs made (empty when the request was handed
    to the sync already running).  Errors are recorded on the repository,
    never raised: a failing repository must not fail the job queue.
    """
    kind = "full" if full else "soft"
    for _ in range(50):
        if _acquire(rt, repository_id, kind):
            break
        if _mark_pending(rt, repository_id):
            log.info("sync.coalesced repository=%s", repository_id)
            return []
    else:
        return []
    results: list[SyncResult] = []
    with _Heartbeat(rt, repository_id):
        while True:
            error = _run_once(rt, repository_id, full, trigger, progress, results)
            # a request that arrived meanwhile is run once, as a soft sync; otherwise the lock is released.
            # The release fails while something is pending, so that check comes again, never the original run.
            # the next scheduled sync follows the wait a failure or a deferral (API budget) asked for
            wait = getattr(error, "retry_after", None) if error else (results[-1].retry_after if results else None)
            while not _take_pending(rt, repository_id):
                if _release(rt, repository_id, error is not None, wait):
                    return results
            full, trigger, progress = False, "soft", None


def _run_once(
    rt: Runtime, repository_id: int, full: bool, trigger: str, progress: Progress | None,
    results: list[SyncResult],
) -> DevlinkError | None:
    """Run one sync and record its outcome on the repository; return the error, if it failed."""
    try:
        results.append(sync_repository(rt, repository_id, full=full, trigger=trigger, progress=progress))
    except DevlinkError as exc:
        log.warning("sync.failed repository=%s reason=%s message=%s", repository_id, exc.reason, exc.message)
        _record(rt, repository_id, exc)
        return exc
    except Exception as exc:
        log.exception("sync.crashed repository=%s", repository_id)
        error = DevlinkError(f"internal error: {type(exc).__name__}: {exc}", reason="internal")
        _record(rt, repository_id, error)
        return error
    _record(rt, repository_id, None)
    return None


def schedule_due(rt: Runtime, enqueue: Enqueue) -> list[int]:
    """Queue a soft sync of every linked repository whose interval has passed; return the ids queued.

    Claiming a repository is a conditional UPDATE of ``next_sync_at``, so
    several schedulers (one per worker) never queue the same repository twice.
    """
    now = utcnow()
    later = now + timedelta(minutes=rt.settings.sync_interval)
    due_filter = (
        Repository.linked.is_(True),
        Repository.state == "active",
        or_(Repository.next_sync_at.is_(None), Repository.next_sync_at <= now),
    )
    queued: list[int] = []
    with rt.sessions() as session:
        due = list(session.scalars(select(Repository.id).where(*due_filter)))
    for repository_id in due:
        with rt.sessions.begin() as session:
            claimed = _changed(
                session,
                update(Repository).where(Repository.id == repository_id, *due_filter).values(next_sync_at=later)
            )
        if claimed and request_sync(rt, repository_id, full=False, trigger="schedule", enqueue=enqueue) == "queued":
            queued.append(repository_id)
    return queued
