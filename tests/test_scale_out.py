"""The scale-out path for real: PostgreSQL store, Redis queue, a web process and two worker processes.

Skips on a developer machine without the servers; fails under CI=true.
"""

import concurrent.futures
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from conftest import REDIS_URL, require_service
from gitrepos import GitRepo
from servers import Server, start_server, stop_server


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
