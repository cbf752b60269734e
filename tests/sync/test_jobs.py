"""The per-repository lock, request coalescing and the schedule, on SQLite and PostgreSQL."""

import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import devlink.sync.jobs as jobs
from devlink.runtime import Runtime
from devlink.store.models import Repository, utcnow
from devlink.sync.engine import SyncResult
from devlink.sync.holders import identity_of, this_process
from devlink.sync.jobs import QUEUED_FRESH, STALE_AFTER, recover, request_sync, run_sync, schedule_due
from devlink.sync.repositories import add_repository
from gitrepos import GitRepo


@pytest.fixture
def linked(runtime: Runtime, bare_remote: tuple[GitRepo, Path]) -> int:
    repo, server = bare_remote
    repo.commit("ABC-1 one")
    repo.git("push", "-q", "origin", "main")
    return add_repository(runtime, str(server)).id


def state(rt: Runtime, repository_id: int) -> tuple[str, bool]:
    with rt.sessions() as session:
        repository = session.get(Repository, repository_id)
        assert repository is not None
        return repository.sync_state, repository.sync_pending


def set_state(rt: Runtime, repository_id: int, **values: object) -> None:
    with rt.sessions.begin() as session:
        session.execute(update(Repository).where(Repository.id == repository_id).values(**values))


def test_requests_queue_once_and_coalesce_while_queued(runtime: Runtime, linked: int) -> None:
    queued: list[tuple[int, bool, str]] = []
    enqueue = lambda *job: queued.append(job)  # noqa: E731

    assert request_sync(runtime, linked, full=False, trigger="hook", enqueue=enqueue) == "queued"
    assert request_sync(runtime, linked, full=False, trigger="hook", enqueue=enqueue) == "coalesced"
    assert request_sync(runtime, linked, full=True, trigger="manual", enqueue=enqueue) == "queued"
    assert queued == [(linked, False, "hook"), (linked, True, "manual")]
    assert state(runtime, linked) == ("queued", False)


def test_a_request_while_running_becomes_one_follow_up(runtime: Runtime, linked: int) -> None:
    queued: list[tuple[int, bool, str]] = []
    set_state(runtime, linked, sync_state="running", sync_heartbeat_at=utcnow())

    for _ in range(3):
        outcome = request_sync(runtime, linked, full=False, trigger="hook", enqueue=lambda *j: queued.append(j))
        assert outcome == "coalesced"
    assert queued == []
    assert state(runtime, linked) == ("running", True)


def test_run_sync_runs_the_follow_up_requested_during_a_run(
    runtime: Runtime, linked: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = jobs.sync_repository
    calls: list[str] = []

    def engine(rt: Runtime, repository_id: int, **options: object) -> SyncResult:
        calls.append("full" if options["full"] else "soft")
        if len(calls) == 1:  # someone pushes while the first sync runs
            request_sync(rt, repository_id, full=False, trigger="hook", enqueue=lambda *j: calls.append("enqueued"))
        return real(rt, repository_id, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs, "sync_repository", engine)
    results = run_sync(runtime, linked, full=True)

    assert calls == ["full", "soft"]  # one follow-up, nothing enqueued
    assert [r.kind for r in results] == ["full", "soft"]
    assert state(runtime, linked) == ("idle", False)


def test_concurrent_runs_never_overlap(runtime: Runtime, linked: int, monkeypatch: pytest.MonkeyPatch) -> None:
    real = jobs.sync_repository
    active, peak = [0], [0]
    guard = threading.Lock()

    def engine(rt: Runtime, repository_id: int, **options: object) -> SyncResult:
        with guard:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)
        try:
            return real(rt, repository_id, **options)  # type: ignore[arg-type]
        finally:
            with guard:
                active[0] -= 1

    monkeypatch.setattr(jobs, "sync_repository", engine)
    outcomes: list[list[SyncResult]] = []
    threads = [threading.Thread(target=lambda: outcomes.append(run_sync(runtime, linked, full=False)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert peak[0] == 1
    runs = sorted(len(o) for o in outcomes)
    assert runs[:3] == [0, 0, 0]  # three requests were folded into the running sync ...
    assert runs[3] in (1, 2)  # ... which ran at most one follow-up for all of them
    assert state(runtime, linked) == ("idle", False)


def test_a_stale_lock_of_a_crashed_worker_is_taken_over(runtime: Runtime, linked: int) -> None:
    set_state(runtime, linked, sync_state="running", sync_heartbeat_at=utcnow() - STALE_AFTER - timedelta(seconds=5))
    [result] = run_sync(runtime, linked, full=False)
    assert result.commits_new == 1
    assert state(runtime, linked) == ("idle", False)


def test_a_fresh_lock_is_respected(runtime: Runtime, linked: int) -> None:
    set_state(runtime, linked, sync_state="running", sync_heartbeat_at=utcnow())
    assert run_sync(runtime, linked, full=False) == []
    assert state(runtime, linked) == ("running", True)


def test_schedule_claims_each_due_repository_once(runtime: Runtime, linked: int) -> None:
    queued: list[tuple[int, bool, str]] = []
    set_state(runtime, linked, next_sync_at=utcnow() - timedelta(minutes=1))
    claims: list[list[int]] = []
    threads = [threading.Thread(target=lambda: claims.append(schedule_due(runtime, lambda *j: queued.append(j))))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(len(c) for c in claims) == [0, 0, 1]
    assert queued == [(linked, False, "schedule")]
    assert schedule_due(runtime, lambda *j: queued.append(j)) == []  # not due again for an interval
    with runtime.sessions() as session:
        repository = session.get(Repository, linked)
        assert repository is not None and repository.next_sync_at is not None
        remaining = repository.next_sync_at - utcnow()
    assert timedelta(minutes=59) < remaining <= timedelta(minutes=60)


def test_a_finished_sync_schedules_the_next_one(runtime: Runtime, linked: int) -> None:
    run_sync(runtime, linked, full=False)
    with runtime.sessions() as session:
        repository = session.get(Repository, linked)
        assert repository is not None and repository.next_sync_at and repository.sync_finished_at
        assert repository.next_sync_at - repository.sync_finished_at == timedelta(minutes=60)


def test_a_repository_removed_during_its_sync_ends_the_run(
    runtime: Runtime, linked: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devlink.sync.repositories import remove_repository

    real = jobs.sync_repository

    def engine(rt: Runtime, repository_id: int, **options: object) -> SyncResult:
        result = real(rt, repository_id, **options)  # type: ignore[arg-type]
        remove_repository(rt, repository_id)  # unlinked by someone while the sync ran
        return result

    monkeypatch.setattr(jobs, "sync_repository", engine)
    finished = threading.Event()
    outcome: list[list[SyncResult]] = []

    def run() -> None:
        outcome.append(run_sync(runtime, linked, full=False))
        finished.set()

    threading.Thread(target=run, daemon=True).start()
    assert finished.wait(20), "run_sync kept looping after the repository was removed"
    assert [r.commits_new for r in outcome[0]] == [1]


def test_a_request_for_a_crashed_sync_is_queued_for_takeover(runtime: Runtime, linked: int) -> None:
    queued: list[tuple[int, bool, str]] = []
    set_state(runtime, linked, sync_state="running", sync_heartbeat_at=utcnow() - STALE_AFTER - timedelta(minutes=1))
    outcome = request_sync(runtime, linked, full=False, trigger="schedule", enqueue=lambda *j: queued.append(j))
    assert outcome == "queued"
    assert queued == [(linked, False, "schedule")]
    assert state(runtime, linked) == ("queued", False)


def test_a_queued_full_sync_absorbs_soft_requests_and_stays_full(runtime: Runtime, linked: int) -> None:
    queued: list[tuple[int, bool, str]] = []
    enqueue = lambda *job: queued.append(job)  # noqa: E731
    assert request_sync(runtime, linked, full=True, trigger="manual", enqueue=enqueue) == "queued"
    assert request_sync(runtime, linked, full=False, trigger="hook", enqueue=enqueue) == "coalesced"
    assert queued == [(linked, True, "manual")]
    with runtime.sessions() as session:
        repository = session.get(Repository, linked)
        assert repository is not None and repository.sync_kind == "full"


def test_a_request_racing_the_release_runs_one_soft_follow_up_only(
    runtime: Runtime, linked: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_engine, real_take = jobs.sync_repository, jobs._take_pending
    calls: list[str] = []
    raced = [False]

    def engine(rt: Runtime, repository_id: int, **options: object) -> SyncResult:
        calls.append("full" if options["full"] else "soft")
        return real_engine(rt, repository_id, **options)  # type: ignore[arg-type]

    def take_pending(rt: Runtime, repository_id: int) -> bool:
        taken = real_take(rt, repository_id)
        if not taken and not raced[0]:  # a push lands right after the check, before the release
            raced[0] = True
            request_sync(rt, repository_id, full=False, trigger="hook", enqueue=lambda *j: calls.append("enqueued"))
        return taken

    monkeypatch.setattr(jobs, "sync_repository", engine)
    monkeypatch.setattr(jobs, "_take_pending", take_pending)
    results = run_sync(runtime, linked, full=True)

    assert calls == ["full", "soft"]
    assert [r.kind for r in results] == ["full", "soft"]
    assert state(runtime, linked) == ("idle", False)


# ---------------------------------------------------------------- lock holders and crash recovery


@pytest.fixture
def dead_holder() -> str:
    """The holder string of a real process of this machine that was killed (as ``kill -9`` leaves a lock)."""
    child = subprocess.Popen(["sleep", "60"])
    holder = identity_of(child.pid)
    child.kill()
    child.wait()
    assert holder is not None
    return holder


@pytest.fixture
def live_holder() -> Iterator[str]:
    child = subprocess.Popen(["sleep", "60"])
    holder = identity_of(child.pid)
    assert holder is not None
    yield holder
    child.kill()
    child.wait()


def holder_of(rt: Runtime, repository_id: int) -> str | None:
    with rt.sessions() as session:
        repository = session.get(Repository, repository_id)
        assert repository is not None
        return repository.sync_holder


def test_the_lock_records_this_process_as_holder_and_release_clears_it(
    runtime: Runtime, linked: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = jobs.sync_repository
    seen: list[str | None] = []

    def engine(rt: Runtime, repository_id: int, **options: object) -> SyncResult:
        seen.append(holder_of(rt, repository_id))
        if len(seen) == 1:
            request_sync(rt, repository_id, full=False, trigger="hook", enqueue=lambda *j: None)
        return real(rt, repository_id, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs, "sync_repository", engine)
    run_sync(runtime, linked, full=False)
    assert seen == [this_process(), this_process()]  # kept through the follow-up
    assert holder_of(runtime, linked) is None


def test_a_request_for_a_dead_holders_lock_is_queued_at_once(
    runtime: Runtime, linked: int, dead_holder: str
) -> None:
    queued: list[tuple[int, bool, str]] = []
    set_state(runtime, linked, sync_state="running", sync_heartbeat_at=utcnow(), sync_holder=dead_holder)
    outcome = request_sync(runtime, linked, full=False, trigger="hook", enqueue=lambda *j: queued.append(j))
    assert outcome == "queued"
    assert queued == [(linked, False, "hook")]
    assert state(runtime, linked) == ("queued", False)
    assert holder_of(runtime, linked) is None


def test_a_live_holder_of_this_machine_keeps_its_lock(runtime: Runtime, linked: int, live_holder: str) -> None:
    set_state(runtime, linked, sync_state="running", sync_heartbeat_at=utcnow(), sync_holder=live_holder)
    assert request_sync(runtime, linked, full=False, trigger="hook", enqueue=lambda *j: None) == "coalesced"
    assert run_sync(runtime, linked, full=False) == []
    assert state(runtime, linked) == ("running", True)
    assert holder_of(runtime, linked) == live_holder


def test_a_dead_holders_lock_is_taken_over_at_once_by_one_taker(
    runtime: Runtime, linked: int, dead_holder: str
) -> None:
    set_state(runtime, linked, sync_state="running", sync_heartbeat_at=utcnow(), sync_holder=dead_holder)
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda: wins.append(jobs._acquire(runtime, linked, "soft"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, False, False, True]
    assert holder_of(runtime, linked) == this_process()

    set_state(runtime, linked, sync_holder=dead_holder, sync_pending=True)  # a request it absorbed before dying
    results = run_sync(runtime, linked, full=False)
    assert [r.commits_new for r in results] == [1, 0]  # the takeover, then the pending request as its follow-up
    assert state(runtime, linked) == ("idle", False)


def test_a_lock_taken_over_meanwhile_is_not_released_by_its_old_holder(
    runtime: Runtime, linked: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = jobs.sync_repository
    other = "elsewhere/42/1234/abcdef012345"

    def engine(rt: Runtime, repository_id: int, **options: object) -> SyncResult:
        result = real(rt, repository_id, **options)  # type: ignore[arg-type]
        # this run looked dead (no heartbeat for five minutes) and another machine took the lock over
        set_state(rt, repository_id, sync_holder=other, sync_heartbeat_at=utcnow(), sync_pending=True)
        return result

    monkeypatch.setattr(jobs, "sync_repository", engine)
    assert len(run_sync(runtime, linked, full=False)) == 1  # ends; it neither runs the other's follow-up ...
    assert state(runtime, linked) == ("running", True)  # ... nor releases the other's lock
    assert holder_of(runtime, linked) == other


def test_the_schedule_queues_a_repository_whose_holder_died(
    runtime: Runtime, linked: int, dead_holder: str
) -> None:
    queued: list[tuple[int, bool, str]] = []
    set_state(runtime, linked, sync_state="running", sync_heartbeat_at=utcnow(), sync_holder=dead_holder,
              next_sync_at=utcnow() - timedelta(seconds=1))
    assert schedule_due(runtime, lambda *j: queued.append(j)) == [linked]
    assert queued == [(linked, False, "schedule")]
    assert state(runtime, linked) == ("queued", False)


def add_more(runtime: Runtime, bare_remote: tuple[GitRepo, Path], count: int) -> list[int]:
    _, server = bare_remote
    ids = []
    for n in range(count):
        copy = server.parent / f"copy-{n}.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(server), str(copy)], check=True)
        ids.append(add_repository(runtime, str(copy)).id)
    return ids


def test_recover_queues_dead_locks_and_lost_jobs_only(
    runtime: Runtime, linked: int, bare_remote: tuple[GitRepo, Path], dead_holder: str, live_holder: str
) -> None:
    ids = add_more(runtime, bare_remote, 8)
    now, stale = utcnow(), utcnow() - STALE_AFTER - timedelta(seconds=5)
    earlier = now - timedelta(minutes=1)
    remote = "another-host/4242/99/0123456789ab"
    rows = {
        linked: dict(sync_state="running", sync_holder=dead_holder, sync_heartbeat_at=now, sync_kind="full"),
        ids[0]: dict(sync_state="running", sync_holder=live_holder, sync_heartbeat_at=now),
        ids[1]: dict(sync_state="running", sync_holder=remote, sync_heartbeat_at=now),
        ids[2]: dict(sync_state="running", sync_holder=remote, sync_heartbeat_at=stale, sync_pending=True),
        ids[3]: dict(sync_state="queued", sync_heartbeat_at=earlier),  # its job is waiting
        ids[4]: dict(sync_state="queued", sync_heartbeat_at=earlier),  # its job was lost (the queue file deleted)
        ids[7]: dict(sync_state="queued", sync_heartbeat_at=now),  # queued this instant: its job is on its way
        ids[5]: dict(sync_state="idle", sync_heartbeat_at=stale),
        ids[6]: dict(sync_state="queued", sync_heartbeat_at=now - QUEUED_FRESH - timedelta(seconds=5)),
    }
    for repository_id, values in rows.items():
        set_state(runtime, repository_id, **values)
    queued: list[tuple[int, bool, str]] = []
    waiting = lambda: {ids[3], ids[6], 999}  # noqa: E731

    outcomes: list[list[int]] = []
    threads = [threading.Thread(target=lambda: outcomes.append(recover(runtime, lambda *j: queued.append(j), waiting)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    expected = [(linked, True, "recover"), (ids[2], False, "recover"), (ids[4], False, "recover")]
    assert sorted(queued) == sorted(expected)
    assert sorted(i for outcome in outcomes for i in outcome) == sorted([linked, ids[2], ids[4]])  # each once
    assert state(runtime, ids[2]) == ("queued", True)  # the absorbed request stays, for the follow-up
    assert holder_of(runtime, linked) is None
    assert state(runtime, ids[0])[0] == state(runtime, ids[1])[0] == "running"

    # a queue that cannot tell what it holds: a job queued longer than QUEUED_FRESH counts as lost
    queued.clear()
    assert recover(runtime, lambda *j: queued.append(j)) == [ids[6]]
