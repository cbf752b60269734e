"""Crash recovery for real: a backfill process is SIGKILLed half-way, then the sync resumes and finishes.

The history is the rebuilt Kafka repository (14,054 commits) written in batches
of 20, so the killed process has committed some batches and not the rest.  Runs
on SQLite and PostgreSQL.
"""

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from devlink.runtime import Runtime
from devlink.store.models import Commit, Repository, utcnow
from devlink.sync.jobs import STALE_AFTER

HISTORIES = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "histories"
KAFKA_COMMITS = 14054


@pytest.fixture(scope="session")
def kafka_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("kafka") / "kafka.git"
    subprocess.run([sys.executable, str(HISTORIES / "make_repo.py"), str(HISTORIES / "kafka.commits.jsonl.gz"),
                    str(target), "--bare", "--quiet"], check=True, capture_output=True, timeout=300)
    return target


@pytest.fixture
def kafka(kafka_history: Path, tmp_path: Path) -> Path:
    """A copy of the history this test may push to."""
    copy = tmp_path / "kafka.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(kafka_history), str(copy)], check=True, timeout=120)
    return copy


def devlink_env(rt: Runtime, **extra: str) -> dict[str, str]:
    return dict(os.environ, DEVLINK_HOME=str(rt.settings.home), DEVLINK_DATABASE_URL=rt.settings.database_url,
                **extra)


def row(rt: Runtime, repository_id: int) -> Repository:
    with rt.sessions() as session:
        repository = session.get(Repository, repository_id)
        assert repository is not None
        session.expunge(repository)
        return repository


def backfill_killed_half_way(rt: Runtime, location: Path) -> tuple[int, float]:
    """Run ``devlink repo add`` in a process of its own and SIGKILL it once 50 batches are committed.

    Returns the repository id and the monotonic time of the kill.
    """
    process = subprocess.Popen([sys.executable, "-m", "devlink", "repo", "add", str(location)],
                               env=devlink_env(rt, DEVLINK_BATCH_SIZE="20"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while True:
            with rt.sessions() as session:
                progress = session.execute(select(Repository.id, Repository.sync_progress)).first()
            if progress is not None and progress[1] >= 1000:
                break
            assert process.poll() is None, f"the backfill ended before it was killed: {process.stderr}"
            assert time.monotonic() < deadline, "the backfill never started"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        process.kill()
        process.wait()
    repository = row(rt, progress[0])
    assert repository.sync_state == "running"
    assert repository.sync_holder is not None and f"/{process.pid}/" in repository.sync_holder
    assert 0 < repository.commits_indexed < KAFKA_COMMITS, "not killed half-way"
    return repository.id, killed_at


def wait_finished(rt: Runtime, repository_id: int, commits: int, timeout: float = 120) -> Repository:
    deadline = time.monotonic() + timeout
    while True:
        repository = row(rt, repository_id)
        if repository.sync_state == "idle" and not repository.sync_pending and repository.commits_indexed >= commits:
            return repository
        assert repository.sync_state != "failed", repository.last_error_message
        assert time.monotonic() < deadline, f"the sync never finished: {repository.sync_state} " \
            f"{repository.commits_indexed} commits, pending={repository.sync_pending}"
        time.sleep(0.05)


def assert_complete(rt: Runtime, repository_id: int, commits: int) -> None:
    """Every commit once, counted once, and a resumed backfill is still a backfill (no smart commits)."""
    repository = row(rt, repository_id)
    with rt.sessions() as session:
        stored = session.scalar(select(func.count()).where(Commit.repository_id == repository_id))
        distinct = session.scalar(select(func.count(func.distinct(Commit.sha))).where(
            Commit.repository_id == repository_id))
        seen_by = set(session.scalars(select(Commit.first_seen_by).where(Commit.repository_id == repository_id)))
    assert stored == distinct == repository.commits_indexed == commits
    assert seen_by == {"backfill"}
    assert repository.sync_holder is None
    assert repository.next_sync_at is not None and repository.next_sync_at > utcnow() + timedelta(minutes=59)


@contextmanager
def consumer(rt: Runtime) -> Iterator[None]:
    started = rt.queue.consumer(workers=2)
    started.start()
    try:
        yield
    finally:
        started.stop(graceful=True)


def test_a_request_after_the_crash_is_queued_at_once_and_finishes_the_backfill(
    runtime: Runtime, kafka: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    repository_id, killed_at = backfill_killed_half_way(runtime, kafka)

    assert runtime.queue.request_sync(repository_id, full=False, trigger="manual") == "queued"
    assert runtime.queue.huey.pending_count() == 1
    with consumer(runtime):
        wait_finished(runtime, repository_id, KAFKA_COMMITS)
    print(f"\nrecovery (a), {runtime.engine.dialect.name}: kill -> finished {time.monotonic() - killed_at:.2f} s")
    assert_complete(runtime, repository_id, KAFKA_COMMITS)
    assert "sync.recovered" not in caplog.text  # the request's own job ran it; the consumer's sweep added nothing


def test_a_consumer_that_starts_after_the_crash_finishes_the_backfill_unasked(
    runtime: Runtime, kafka: Path, tmp_path: Path
) -> None:
    repository_id, killed_at = backfill_killed_half_way(runtime, kafka)

    log = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "devlink", "worker"], env=devlink_env(runtime),
                              stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_finished(runtime, repository_id, KAFKA_COMMITS, timeout=30)
        print(f"\nrecovery (b), {runtime.engine.dialect.name}: kill -> finished {time.monotonic() - killed_at:.2f} s")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert_complete(runtime, repository_id, KAFKA_COMMITS)
    assert f"sync.recovered repository={repository_id} reason=holder_gone" in log.read_text()


def test_a_holder_elsewhere_keeps_a_request_until_its_lock_goes_stale_then_the_sweep_honours_it(
    runtime: Runtime, kafka: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    repository_id, _ = backfill_killed_half_way(runtime, kafka)
    # as if the killed process had run on another machine: nothing here can tell it is gone
    with runtime.sessions.begin() as session:
        session.execute(update(Repository).where(Repository.id == repository_id).values(
            sync_holder="another-host/4242/123456/0123456789ab", sync_heartbeat_at=utcnow()))

    with consumer(runtime):
        # a push lands: its request is kept for the lock's holder, which looks alive
        tree = subprocess.run(["git", "-C", str(kafka), "rev-parse", "HEAD^{tree}"], capture_output=True,
                              text=True, check=True).stdout.strip()
        pushed = subprocess.run(["git", "-C", str(kafka), "commit-tree", tree, "-p", "HEAD", "-m",
                                 "KAFKA-99999 pushed after the crash"], capture_output=True, text=True,
                                check=True).stdout.strip()
        subprocess.run(["git", "-C", str(kafka), "update-ref", "HEAD", pushed], check=True)
        assert runtime.queue.request_sync(repository_id, full=False, trigger="hook") == "coalesced"
        runtime.queue.schedule_task.call_local()  # the minute's sweep trusts a fresh heartbeat
        time.sleep(1)
        assert (row(runtime, repository_id).sync_state, row(runtime, repository_id).sync_pending) == ("running", True)

        with runtime.sessions.begin() as session:  # five minutes without a heartbeat
            session.execute(update(Repository).where(Repository.id == repository_id).values(
                sync_heartbeat_at=utcnow() - STALE_AFTER - timedelta(seconds=1)))
        runtime.queue.schedule_task.call_local()
        wait_finished(runtime, repository_id, KAFKA_COMMITS + 1)

    assert_complete(runtime, repository_id, KAFKA_COMMITS + 1)
    assert f"sync.recovered repository={repository_id} reason=lock_stale" in caplog.text
    # the takeover resumed the backfill, then the kept request ran as its follow-up
    assert caplog.text.count(f"sync.done repository={repository_id} ") == 2
    with runtime.sessions() as session:
        assert session.scalar(select(Commit.sha).where(Commit.message.like("KAFKA-99999%"))) == pushed
