"""The job queue wiring: the periodic schedule queues due repositories and a real consumer runs the job."""

import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from devlink.runtime import Runtime
from devlink.store.models import Repository, utcnow
from devlink.sync.repositories import add_repository
from gitrepos import GitRepo


def test_schedule_queues_due_repositories_and_the_consumer_syncs_them(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path]
) -> None:
    repo, server = bare_remote
    sha = repo.commit("TASK-1 scheduled")
    repo.git("push", "-q", "origin", "main")
    repository = add_repository(runtime, str(server))
    queue = runtime.queue
    assert queue.huey.pending_count() == 0

    with runtime.sessions.begin() as session:  # not due yet: the schedule leaves it alone
        session.execute(update(Repository).values(next_sync_at=utcnow() + timedelta(minutes=5)))
    queue.schedule_task.call_local()
    assert queue.huey.pending_count() == 0

    with runtime.sessions.begin() as session:
        session.execute(update(Repository).values(next_sync_at=utcnow() - timedelta(seconds=1)))
    queue.schedule_task.call_local()
    assert queue.huey.pending_count() == 1

    consumer = queue.consumer(workers=1)
    consumer.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            with runtime.sessions() as session:
                stored = session.get(Repository, repository.id)
                assert stored is not None
                if stored.sync_state == "idle" and stored.commits_indexed == 1:
                    break
            assert time.monotonic() < deadline, f"the consumer never ran the sync: {stored.sync_state}"
            time.sleep(0.05)
    finally:
        consumer.stop(graceful=True)
    # the consumer's own minute tick may have queued schedule_due as the clock passed a minute: not a sync
    left = [(t.name, t.args) for t in queue.huey.pending() if t.name != "schedule_due"]
    assert left == []
    assert stored.next_sync_at is not None and stored.next_sync_at > utcnow() + timedelta(minutes=59)
    from devlink.store import queries

    with runtime.sessions() as session:
        assert [c["sha"] for c in queries.development(session, "TASK-1")["commits"]] == [sha]


def test_a_queued_sync_whose_job_was_lost_is_queued_again_and_run(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path]
) -> None:
    repo, server = bare_remote
    repo.commit("TASK-2 queued, then lost")
    repo.git("push", "-q", "origin", "main")
    repository = add_repository(runtime, str(server))
    queue = runtime.queue
    assert queue.request_sync(repository.id, full=True, trigger="manual") == "queued"
    with runtime.sessions.begin() as session:  # queued a while ago
        session.execute(update(Repository).values(sync_heartbeat_at=utcnow() - timedelta(minutes=1)))

    assert queue.waiting_syncs() == {repository.id}
    assert queue.recover() == []  # its job is waiting: nothing to do
    queue.huey.flush()  # the queue file was deleted
    assert queue.waiting_syncs() == set()
    assert queue.recover() == [repository.id]
    assert queue.recover() == []  # queued once
    assert queue.waiting_syncs() == {repository.id}
    [task] = queue.huey.pending()
    assert task.args == (repository.id, True, "recover")  # the full sync that was asked for

    consumer = queue.consumer(workers=1)
    consumer.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            with runtime.sessions() as session:
                stored = session.get(Repository, repository.id)
                assert stored is not None
                if stored.sync_state == "idle" and stored.commits_indexed == 1:
                    break
            assert time.monotonic() < deadline, f"the recovered job never ran: {stored.sync_state}"
            time.sleep(0.05)
    finally:
        consumer.stop(graceful=True)
    assert stored.sync_kind == "full"
