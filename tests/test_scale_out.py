"""The scale-out path for real: PostgreSQL store, Redis queue, a web process and two worker processes.

Skips on a developer machine without the servers; fails under CI=true.
"""

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from gitrepos import GitRepo
from servers import Server, start_server, stop_server
from services import REDIS_URL, require_service


@pytest.fixture
def redis_queue() -> Iterator[str]:
    require_service("Redis", 6379)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, redis_queue: str) -> Iterator[tuple[Server, list[Path]]]:
    env = {"DEVLINK_DATABASE_URL": postgres_url, "DEVLINK_QUEUE_URL": redis_queue, "DEVLINK_SECRET_KEY":
           "x3L0m8rN2pQ4sT6vW8yA0cE2gI4kM6oQ8sU0wY2aC4E="}
    home = tmp_path / "home"
    web = start_server(home, {**env, "DEVLINK_WORKERS": "1"}, worker=False)
    workers: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    for index in range(2):
        log = tmp_path / f"worker-{index}.log"
        logs.append(log)
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "devlink", "worker", "--workers", "2"],
            env=dict(os.environ, DEVLINK_HOME=str(home), **env), stdout=log.open("wb"), stderr=subprocess.STDOUT,
        ))
    yield web, logs
    for process in workers:
        process.terminate()
    for process in workers:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    stop_server(web)


def test_web_and_two_workers_on_postgres_and_redis(cluster: tuple[Server, list[Path]], tmp_path: Path) -> None:
    web, logs = cluster
    repos: list[tuple[GitRepo, int]] = []
    with web.client() as client:
        for index in range(4):
            repo = GitRepo(tmp_path / f"work-{index}")
            bare = tmp_path / f"server-{index}.git"
            subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
            repo.git("remote", "add", "origin", str(bare))
            for n in range(5):
                repo.commit(f"SCALE-{index} commit {n}")
            repo.git("push", "-q", "origin", "main")
            created = client.post("/api/v1/repositories", json={"url": str(bare), "name": f"scale-{index}"})
            assert created.status_code == 201, created.text
            repos.append((repo, created.json()["id"]))
        for _, repository_id in repos:
            assert web.wait_idle(repository_id, timeout=60)["sync"]["commits_indexed"] == 5

        # a burst of push notifications for one repository while new commits land
        repo, repository_id = repos[0]
        hooked = web.cli("repo", "hook", str(tmp_path / "server-0.git"), "--token-file", str(tmp_path / "token"))
        assert hooked.returncode == 0, hooked.stderr
        token = (tmp_path / "token").read_text().partition(":")[2].strip()
        for n in range(5, 10):
            repo.commit(f"SCALE-0 commit {n}")
        repo.git("push", "-q", "origin", "main")

        def notify(_: int) -> int:
            return httpx.post(f"{web.url}/hooks/git", headers={"X-Devlink-Token": token}, timeout=10).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert set(pool.map(notify, range(20))) == {202}
        deadline = time.monotonic() + 60
        while client.get("/api/v1/issues/SCALE-0/development").json()["summary"]["commits"] < 10:
            assert time.monotonic() < deadline, "pushed commits never appeared"
            time.sleep(0.1)
        view = web.wait_idle(repository_id, timeout=60)
        assert view["sync"]["commits_indexed"] == 10
        assert client.get("/api/v1/issues/SCALE-3/development").json()["summary"]["commits"] == 5

    texts = [log.read_text() for log in logs]
    assert all("devlink worker: 2 threads on redis queue" in text for text in texts)
    # every sync ran in a worker process (4 backfills, at least one hook-driven), none in the web process
    assert sum(text.count("sync.done") for text in texts) >= 5
    assert "sync.done" not in web.log.read_text()


HISTORIES = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "histories"


def test_a_worker_killed_mid_sync_leaves_the_backfill_to_the_other(
    tmp_path: Path, postgres_url: str, redis_queue: str
) -> None:
    from sqlalchemy import create_engine, func, select

    from devlink.store.models import Commit, Repository

    bare = tmp_path / "kafka.git"
    subprocess.run([sys.executable, str(HISTORIES / "make_repo.py"), str(HISTORIES / "kafka.commits.jsonl.gz"),
                    str(bare), "--bare", "--quiet"], check=True, capture_output=True, timeout=300)
    env = dict(os.environ, DEVLINK_HOME=str(tmp_path / "home"), DEVLINK_DATABASE_URL=postgres_url,
               DEVLINK_QUEUE_URL=redis_queue, DEVLINK_BATCH_SIZE="200",
               DEVLINK_SECRET_KEY="x3L0m8rN2pQ4sT6vW8yA0cE2gI4kM6oQ8sU0wY2aC4E=")
    subprocess.run([sys.executable, "-m", "devlink", "migrate"], env=env, check=True, capture_output=True)
    logs = [tmp_path / f"worker-{index}.log" for index in range(2)]
    workers = [subprocess.Popen([sys.executable, "-m", "devlink", "worker", "--workers", "2"], env=env,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT) for log in logs]
    engine = create_engine(postgres_url)
    try:
        added = subprocess.run([sys.executable, "-m", "devlink", "repo", "add", str(bare), "--no-sync"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert added.returncode == 0, added.stderr

        def repository() -> Repository:
            with engine.connect() as connection:
                return connection.execute(select(Repository.__table__)).one()  # type: ignore[return-value]

        deadline = time.monotonic() + 120
        while (current := repository()).sync_progress < 1000:
            assert current.sync_state in ("queued", "running"), current.sync_state
            assert time.monotonic() < deadline, "no worker started the backfill"
            time.sleep(0.005)
        holder_pid = int(current.sync_holder.split("/")[1])
        [victim] = [w for w in workers if w.pid == holder_pid]
        survivor = workers[1 - workers.index(victim)]
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait()
        assert repository().commits_indexed < 14054, "not killed half-way"

        requested = subprocess.run([sys.executable, "-m", "devlink", "sync", "kafka"], env=env, capture_output=True,
                                   text=True, timeout=120)
        assert "soft sync queued" in requested.stdout, requested.stdout + requested.stderr
        deadline = time.monotonic() + 120
        while (current := repository()).sync_state != "idle" or current.sync_pending:
            assert current.sync_state != "failed", current.last_error_message
            assert time.monotonic() < deadline, f"the other worker never finished: {current.sync_state}"
            time.sleep(0.05)
        print(f"\nscale-out recovery: kill -> finished {time.monotonic() - killed_at:.2f} s")
        with engine.connect() as connection:
            stored = connection.scalar(select(func.count()).select_from(Commit.__table__))
            distinct = connection.scalar(select(func.count(func.distinct(Commit.__table__.c.sha))))
        assert stored == distinct == current.commits_indexed == 14054
        assert current.sync_holder is None
        assert survivor.poll() is None
        assert "sync.done repository=1 " in logs[workers.index(survivor)].read_text()
    finally:
        engine.dispose()
        for process in workers:
            if process.poll() is None:
                process.terminate()
        for process in workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
