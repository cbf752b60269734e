"""Run syncs safely: one at a time per repository, requests coalesced, failures recorded.

The lock is a conditional UPDATE on the repository row (works the same on
SQLite and PostgreSQL, across any number of processes):

* ``request_sync`` — while a sync runs, a request sets ``sync_pending`` and
  enqueues nothing; while a soft sync is already queued, a soft request is
  absorbed by it.  Otherwise it marks the row ``queued`` and enqueues a job.
* ``run_sync`` — takes the lock (``running``, ``sync_holder`` = this process),
  syncs, then either clears ``sync_pending`` and runs one follow-up soft sync,
  or releases the lock.  The release only succeeds while nothing is pending, so
  a request that lands between the last check and the release is never lost.
* A dead holder's lock is taken over: at once when the holder is a process of
  this machine that is gone (``sync.holders``), after ``STALE_AFTER`` without
  a heartbeat otherwise.  A heartbeat thread keeps a live lock fresh.
* ``recover`` — run when a consumer starts and every minute: queues the sync
  of each repository whose holder died or whose queued job was lost, so a
  crashed sync resumes without anyone asking.
"""

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Update, and_, false, or_, select, update
from sqlalchemy.orm import Session

from devlink.errors import DevlinkError
from devlink.runtime import Runtime
from devlink.store.models import Repository, utcnow
from devlink.sync.development_push import request_push
from devlink.sync.engine import Progress, SyncResult, sync_repository
from devlink.sync.holders import dead_here, this_process

__all__ = ["QUEUED_FRESH", "STALE_AFTER", "recover", "request_sync", "run_sync", "schedule_due"]

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=5)
HEARTBEAT_EVERY = 30.0  # seconds
QUEUED_FRESH = timedelta(minutes=15)  # a queued job older than this may have been lost: enqueue again
#: A row is marked queued just before its job is enqueued; only a row queued longer ago than this and
#: missing from the queue counts as a lost job (the next minute's sweep looks again).
ENQUEUE_GRACE = timedelta(seconds=10)

Enqueue = Callable[[int, bool, str], None]
#: The ids of the repositories whose sync job is waiting in the queue (``recover`` without one: cannot tell).
Waiting = Callable[[], set[int]]


def _changed(session: Session, statement: Update) -> int:
    """Run a conditional UPDATE and return how many rows it changed: the lock primitive."""
    result = session.execute(statement)
    return int(cast(CursorResult[Any], result).rowcount)


def _holder(rt: Runtime, repository_id: int) -> str | None:
    """The holder of a repository's running sync (None when not running), read before the conditional UPDATE."""
    with rt.sessions() as session:
        return session.scalar(
            select(Repository.sync_holder).where(Repository.id == repository_id, Repository.sync_state == "running")
        )


def _still_held_by(holder: str | None, gone: bool) -> ColumnElement[bool]:
    """The row is still locked by ``holder`` when that holder is ``gone`` (a dead process of this machine)."""
    return and_(Repository.sync_state == "running", Repository.sync_holder == holder) if gone else false()


def request_sync(rt: Runtime, repository_id: int, *, full: bool, trigger: str, enqueue: Enqueue) -> str:
    """Ask for a sync; return ``coalesced`` or ``queued``.  Never runs the sync itself.

    A request is folded into a sync that is running (as one follow-up soft
    sync) or, when soft, into one already queued (soft or full).  A lock whose
    holder is dead (gone from this machine, or without a heartbeat for
    ``STALE_AFTER``) absorbs nothing: the request is queued, and the job takes
    the lock over.  A dead holder on another machine still looks alive until
    its heartbeat goes stale; the request is then kept as ``sync_pending``,
    which the takeover honours (``recover``).
    """
    now = utcnow()
    alive = Repository.sync_heartbeat_at >= now - STALE_AFTER
    holder = _holder(rt, repository_id)
    gone = dead_here(holder)
    dead = _still_held_by(holder, gone)
    with rt.sessions.begin() as session:
        if not gone:
            running = _changed(
                session,
                update(Repository)
                .where(
                    Repository.id == repository_id, Repository.sync_state == "running", alive,
                    Repository.sync_holder.is_not_distinct_from(holder),
                )
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
            .where(Repository.id == repository_id, or_(Repository.sync_state != "running", ~alive, dead))
            .values(sync_state="queued", sync_kind="full" if full else "soft", sync_heartbeat_at=now,
                    sync_holder=None),
        )
    enqueue(repository_id, full, trigger)
    return "queued"


def _acquire(rt: Runtime, repository_id: int, kind: str) -> bool:
    """Take the lock: free, stale, or held by a dead process of this machine (only one taker wins)."""
    now = utcnow()
    holder = _holder(rt, repository_id)
    gone = dead_here(holder)
    dead = _still_held_by(holder, gone)
    with rt.sessions.begin() as session:
        taken = _changed(
            session,
            update(Repository)
            .where(
                Repository.id == repository_id,
                or_(Repository.sync_state != "running", Repository.sync_heartbeat_at < now - STALE_AFTER, dead),
            )
            .values(
                sync_state="running", sync_kind=kind, sync_started_at=now, sync_finished_at=None,
                sync_heartbeat_at=now, sync_progress=0, sync_holder=this_process(),
            )
        )
    if taken and gone:
        log.warning("sync.lock_taken_over repository=%s holder=%s reason=holder_gone", repository_id, holder)
    return bool(taken)


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
    """Turn a pending request into the next run under this process's lock (never under a lock taken over)."""
    with rt.sessions.begin() as session:
        return bool(
            _changed(
                session,
                update(Repository)
                .where(Repository.id == repository_id, Repository.sync_pending.is_(True),
                       Repository.sync_holder == this_process())
                .values(sync_pending=False, sync_kind="soft", sync_started_at=utcnow(), sync_progress=0)
            )
        )


def _release(rt: Runtime, repository_id: int, failed: bool, retry_after: float | None = None) -> bool:
    """Give the lock back unless a follow-up is pending; True when the run is over.

    The next scheduled sync comes after the interval, or after the wait a host
    asked for (rate limit, outage) when the run failed with one or deferred work to it.
    A repository removed meanwhile, or a lock another process took over (this
    one was believed dead), also ends the run: that lock is not this run's to release.
    """
    now = utcnow()
    wait = timedelta(seconds=retry_after) if retry_after else timedelta(minutes=rt.settings.sync_interval)
    me = this_process()
    with rt.sessions.begin() as session:
        released = _changed(
            session,
            update(Repository)
            .where(Repository.id == repository_id, Repository.sync_pending.is_(False), Repository.sync_holder == me)
            .values(
                sync_state="failed" if failed else "idle",
                sync_finished_at=now,
                next_sync_at=now + wait,
                sync_holder=None,
            ),
        )
        if released:
            return True
        repository = session.get(Repository, repository_id)
        if repository is None:
            return True
        if repository.sync_holder != me:
            log.warning("sync.lock_lost repository=%s holder=%s", repository_id, repository.sync_holder)
            return True
        return False


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
        self._rt, self._id, self._holder = rt, repository_id, this_process()
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
                        update(Repository)
                        .where(Repository.id == self._id, Repository.sync_holder == self._holder)
                        .values(sync_heartbeat_at=utcnow())
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
                    # whatever ran the sync, the development data is due; a full sync sends all of it again
                    request_push(rt, repository_id, resend=any(r.kind == "full" for r in results))
                    return results
            full, trigger, progress = False, "soft", None


INTERRUPTED = "interrupted; what was read is kept, and the next sync resumes where this one stopped"


def _requeue_interrupted(rt: Runtime, repository_id: int, full: bool) -> None:
    """Hand an interrupted run's lock over as a ``queued`` sync of the same kind, with no job behind it yet.

    ``recover`` (a consumer's sweep, at start and every minute) queues its job,
    and ``devlink sync --wait`` takes it at once.  Released as ``failed``
    instead, the scheduler's next soft sync would clear the error and never
    re-read what an interrupted full sync had not reached.  A follow-up that
    was pending is part of the sync left due.
    """
    now = utcnow()
    with rt.sessions.begin() as session:
        session.execute(
            update(Repository)
            .where(Repository.id == repository_id, Repository.sync_holder == this_process())
            .values(sync_state="queued", sync_kind="full" if full else "soft", sync_holder=None,
                    sync_heartbeat_at=now, sync_pending=False, sync_finished_at=now)
        )


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
    except KeyboardInterrupt:  # Ctrl-C in the CLI: say so, and leave the same kind of sync due
        log.info("sync.interrupted repository=%s kind=%s", repository_id, "full" if full else "soft")
        _record(rt, repository_id, DevlinkError(INTERRUPTED, reason="interrupted"))
        _requeue_interrupted(rt, repository_id, full)
        raise
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


def recover(rt: Runtime, enqueue: Enqueue, waiting: Waiting | None = None) -> list[int]:
    """Queue the sync of every repository whose lock holder died or whose queued job was lost; return the ids.

    Runs when a consumer starts and every minute, so a sync killed half-way
    resumes from its cursor without anyone asking.  A ``running`` repository
    is recovered when its holder is a process of this machine that is gone (at
    once) or its heartbeat is older than ``STALE_AFTER`` (a holder elsewhere).
    A ``queued`` one is recovered when its job is not in the queue
    (``waiting``: a queue file deleted, a worker killed between taking the job
    and the lock; only rows queued over ``ENQUEUE_GRACE`` ago, since a row is
    marked just before its job is enqueued) or, when the queue cannot tell,
    once it has waited longer than ``QUEUED_FRESH``.  The recovered job runs the same kind of sync, and a
    request kept as ``sync_pending`` becomes its follow-up.  Each claim is a
    conditional UPDATE, so consumers starting together queue a repository once.
    """
    now = utcnow()
    with rt.sessions() as session:
        rows = session.execute(
            select(Repository.id, Repository.sync_state, Repository.sync_holder, Repository.sync_heartbeat_at,
                   Repository.sync_kind)
            .where(Repository.linked.is_(True), Repository.sync_state.in_(("running", "queued")))
            .order_by(Repository.id)
        ).all()
    in_queue: set[int] | None = None
    recovered: list[int] = []
    for repository_id, sync_state, holder, heartbeat, kind in rows:
        if sync_state == "running":
            reason, claim = _dead_lock(holder, heartbeat, now)
        else:
            if in_queue is None and waiting is not None:
                in_queue = waiting()
            reason, claim = _lost_job(repository_id in in_queue if in_queue is not None else None, heartbeat, now)
        if claim is None or not _claim(rt, repository_id, sync_state, claim, now):
            continue
        log.warning("sync.recovered repository=%s reason=%s holder=%s", repository_id, reason, holder)
        enqueue(repository_id, kind == "full", "recover")
        recovered.append(repository_id)
    return recovered


def _dead_lock(
    holder: str | None, heartbeat: datetime | None, now: datetime
) -> tuple[str, ColumnElement[bool] | None]:
    """Why a running lock is dead, and the condition that claims it (None: alive as far as anyone can tell)."""
    if holder is not None and dead_here(holder):
        return "holder_gone", Repository.sync_holder == holder
    stale = now - STALE_AFTER
    if heartbeat is None or heartbeat < stale:
        return "lock_stale", or_(Repository.sync_heartbeat_at.is_(None), Repository.sync_heartbeat_at < stale)
    return "", None


def _lost_job(
    in_queue: bool | None, queued_at: datetime | None, now: datetime
) -> tuple[str, ColumnElement[bool] | None]:
    """Why a queued repository's job counts as lost, and the condition that claims it (None: it is waiting).

    The claim requires the row to be as it was read (queued no later than
    ``queued_at``): a request that queued it again meanwhile has its own job.
    """
    unchanged = or_(Repository.sync_heartbeat_at.is_(None), Repository.sync_heartbeat_at <= (queued_at or now))
    if in_queue is False and (queued_at is None or queued_at <= now - ENQUEUE_GRACE):
        return "job_missing", unchanged
    if in_queue is None and (queued_at is None or queued_at <= now - QUEUED_FRESH):
        return "queued_too_long", unchanged
    return "", None


def _claim(rt: Runtime, repository_id: int, sync_state: str, condition: ColumnElement[bool], now: datetime) -> bool:
    """Mark a recovered repository queued anew (the lock, if any, is dropped; ``sync_pending`` stays)."""
    with rt.sessions.begin() as session:
        return bool(
            _changed(
                session,
                update(Repository)
                .where(Repository.id == repository_id, Repository.sync_state == sync_state, condition)
                .values(sync_state="queued", sync_heartbeat_at=now, sync_holder=None),
            )
        )
