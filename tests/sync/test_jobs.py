"""The per-repository lock, request coalescing and the schedule, on SQLite and PostgreSQL."""

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import devlink.sync.jobs as jobs
from devlink.runtime import Runtime
from devlink.store.models import Repository, utcnow
from devlink.sync.engine import SyncResult
from devlink.sync.jobs import STALE_AFTER, request_sync, run_sync, schedule_due
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
