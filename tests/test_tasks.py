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
    assert queue.huey.pending_count() == 0
    assert stored.next_sync_at is not None and stored.next_sync_at > utcnow() + timedelta(minutes=59)
    from devlink.store import queries

    with runtime.sessions() as session:
        assert [c["sha"] for c in queries.development(session, "TASK-1")["commits"]] == [sha]
