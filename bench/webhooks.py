"""GitHub webhook benchmark: a real ``devlink serve`` on loopback, signed push deliveries, real git fetches.

Sets up a fresh data directory (SQLite and the embedded queue by default, or
PostgreSQL and Redis) holding one GitHub-style repository: its ``external_id``
is the GitHub repository id the payloads carry and it has a webhook secret,
but its ``url`` is a local bare repository, so everything stays on loopback
and each webhook's soft sync really fetches the new commit with git.  Then:

1. sequential: N times, commit ``BENCH-<i> ...`` in a working clone, push it
   to the bare repository, POST the signed ``push`` delivery (the corpus's
   push.none.2.json with ref, before/after and commits spliced in), and poll
   ``GET /api/v1/issues/BENCH-<i>/development`` every 5 ms until it shows the
   commit: the time from sending the delivery to seeing the commit;
2. burst: M signed deliveries (no pushes) fired from T threads at once:
   deliveries accepted per second while the queue is being hammered.

    python bench/webhooks.py [--deliveries 200] [--burst 500] [--threads 16]
                             [--database-url URL --queue-url redis://...] [--keep DIR]

Prints one line per figure and a one-line summary; exits 1 if a delivery is
refused or a commit never shows up.
"""

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("DEVLINK_CORPUS", ROOT.parent / "shared" / "corpus")) / "github-webhooks"
EXTERNAL_ID = "424242"  # the GitHub repository id our deliveries name
HOOK_ID = "1"  # the id of the repository's webhook (repositories.webhook_id)
OWNER, NAME = "bench-org", "bench-repo"
GIT_ENV = {"GIT_AUTHOR_NAME": "Bench Mark", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "Bench Mark", "GIT_COMMITTER_EMAIL": "bench@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                          env=dict(os.environ, **GIT_ENV))
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def make_repositories(workdir: Path) -> tuple[Path, Path]:
    bare, work = workdir / "remote.git", workdir / "work"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", str(work)], check=True)
    git(work, "remote", "add", "origin", str(bare))
    (work / "file.txt").write_text("0\n")
    git(work, "add", "file.txt")
    git(work, "commit", "-q", "-m", "initial commit")
    git(work, "push", "-q", "origin", "main")
    return bare, work


def commit_and_push(work: Path, i: int) -> tuple[str, str, str]:
    before = git(work, "rev-parse", "HEAD")
    message = f"BENCH-{i} tune the webhook path, step {i}"
    (work / "file.txt").write_text(f"step {i}\n")
    git(work, "commit", "-q", "-a", "-m", message)
    git(work, "push", "-q", "origin", "main")
    return before, git(work, "rev-parse", "HEAD"), message


def reset_postgres(database_url: str) -> None:
    """Create the database if missing, then empty its public schema (the benchmark owns it)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}):
            connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def reset_redis(queue_url: str) -> None:
    import redis

    redis.Redis.from_url(queue_url).flushdb()


def link_repository(env: dict[str, str], bare: Path, secret: str) -> int:
    """The row ``devlink account add`` would make for a linked GitHub repository, backfilled, url pointing home."""
    from devlink.config import load_settings
    from devlink.runtime import Runtime
    from devlink.store.models import Host, Repository
    from devlink.sync.jobs import run_sync

    rt = Runtime.open(load_settings(env))
    try:
        with rt.sessions.begin() as session:
            host = Host(kind="github", name="github.com", web_url="https://github.com", api_url="https://api.github.com")
            session.add(host)
            session.flush()
            row = Repository(host_id=host.id, account_id=None, external_id=EXTERNAL_ID, name=f"{OWNER}/{NAME}",
                             url=str(bare), web_url=f"https://github.com/{OWNER}/{NAME}", linked=True,
                             default_branch="main", webhook_id=HOOK_ID, webhook_state="installed",
                             webhook_secret=rt.vault.encrypt(secret))
            session.add(row)
            session.flush()
            repository_id = row.id
        [result] = run_sync(rt, repository_id, full=True)
        assert result.commits_new == 1, result
        return repository_id
    finally:
        rt.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Serve:
    url: str
    process: "subprocess.Popen[bytes]"
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_serve(env: dict[str, str], log: Path) -> Serve:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "devlink", "serve", "--port", str(port)], env=env,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/api/v1/repositories", timeout=1).status_code == 200:
                return Serve(url, process, log)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"devlink serve did not start:\n{log.read_text()}")
        time.sleep(0.05)


class Deliveries:
    """Signed push deliveries in the shape of the corpus's push.none.2.json."""

    def __init__(self, secret: str) -> None:
        from devlink.hosts.github_webhooks import sign

        self._sign = sign
        self.secret = secret.encode()
        template: dict[str, Any] = json.loads((CORPUS / "push.none.2.json").read_text())
        repo = template["repository"]
        repo.update(id=int(EXTERNAL_ID), name=NAME, full_name=f"{OWNER}/{NAME}",
                    html_url=f"https://github.com/{OWNER}/{NAME}", clone_url=f"https://github.com/{OWNER}/{NAME}.git")
        repo["owner"].update(login=OWNER, name=OWNER)
        template["organization"]["login"] = OWNER
        self.template = template

    def push(self, before: str, after: str, message: str) -> bytes:
        payload = dict(self.template)
        commit = {"id": after, "tree_id": after, "distinct": True, "message": message,
                  "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "url": f"https://github.com/{OWNER}/{NAME}/commit/{after}",
                  "author": {"name": "Bench Mark", "email": "bench@example.com", "username": "bench"},
                  "committer": {"name": "Bench Mark", "email": "bench@example.com", "username": "bench"},
                  "added": [], "removed": [], "modified": ["file.txt"]}
        payload.update(ref="refs/heads/main", before=before, after=after, created=False, deleted=False,
                       compare=f"https://github.com/{OWNER}/{NAME}/compare/{before[:12]}...{after[:12]}",
                       commits=[commit], head_commit=commit)
        return json.dumps(payload).encode()

    def headers(self, body: bytes) -> dict[str, str]:
        """As GitHub sends them: the hook's id and the repository it is on name the secret, then the signature."""
        return {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/bench", "X-GitHub-Event": "push",
                "X-GitHub-Delivery": str(uuid.uuid4()), "X-GitHub-Hook-ID": HOOK_ID,
                "X-GitHub-Hook-Installation-Target-Type": "repository",
                "X-GitHub-Hook-Installation-Target-ID": EXTERNAL_ID,
                "X-Hub-Signature-256": self._sign(self.secret, body)}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"p50": statistics.median(ordered), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1],
            "mean": statistics.fmean(ordered)}


def fmt(stats: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:7.1f} ms" for k, v in stats.items())


def wait_idle(client: httpx.Client, repository_id: int, timeout: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        sync = client.get(f"/api/v1/repositories/{repository_id}").json()["sync"]
        if sync["state"] in ("idle", "failed") and not sync["pending"]:
            return time.perf_counter() - started
        time.sleep(0.01)
    raise SystemExit(f"repository {repository_id} never went idle")


def push_and_deliver(client: httpx.Client, work: Path, deliveries: Deliveries, i: int,
                     ) -> tuple[float, float, float] | None:
    """Commit BENCH-i, push, deliver, poll until visible: (push ms, answer ms, visible ms), None on failure."""
    started = time.perf_counter()
    before, after, message = commit_and_push(work, i)
    pushed = (time.perf_counter() - started) * 1000
    body = deliveries.push(before, after, message)
    headers = deliveries.headers(body)
    sent = time.perf_counter()
    answer = client.post("/hooks/github", content=body, headers=headers)
    accepted = (time.perf_counter() - sent) * 1000
    if answer.status_code != 202 or answer.json()["status"] not in ("queued", "coalesced"):
        print(f"  delivery {i} refused: {answer.status_code} {answer.text[:200]}")
        return None
    while True:
        doc = client.get(f"/api/v1/issues/BENCH-{i}/development").json()
        if any(c["sha"] == after for c in doc["commits"]):
            return pushed, accepted, (time.perf_counter() - sent) * 1000
        if time.perf_counter() - sent > 30:
            print(f"  BENCH-{i}: commit {after[:12]} not visible after 30 s")
            return None
        time.sleep(0.005)


def sequential(client: httpx.Client, work: Path, deliveries: Deliveries, count: int, budget: float,
               ) -> tuple[list[float], list[float], list[float], int]:
    """One delivery at a time; returns accept times, visible times, push times and failures."""
    accept, visible, pushes = [], [], []
    failures = 0
    deadline = time.monotonic() + budget
    for i in range(1, count + 1):
        if time.monotonic() > deadline:
            print(f"  (stopped after {i - 1} deliveries: --budget {budget:.0f}s reached)")
            break
        measured = push_and_deliver(client, work, deliveries, i)
        if measured is None:
            failures += 1
            continue
        pushes.append(measured[0])
        accept.append(measured[1])
        visible.append(measured[2])
    return accept, visible, pushes, failures


def burst(url: str, deliveries: Deliveries, body: bytes, count: int, threads: int,
          ) -> tuple[float, list[float], Counter[str]]:
    """``count`` deliveries from ``threads`` threads at once (a keep-alive client each); returns wall seconds."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=60)
            with lock:
                clients.append(local.client)
        return local.client  # type: ignore[no-any-return]

    def one(_: int) -> tuple[float, str]:
        headers = deliveries.headers(body)
        started = time.perf_counter()
        answer = client().post("/hooks/github", content=body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        status = answer.json().get("status", "?") if answer.status_code == 202 else f"http {answer.status_code}"
        return elapsed, status

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: client(), range(threads * 4)))  # connect first: measure deliveries, not handshakes
        started = time.perf_counter()
        results = list(pool.map(one, range(count)))
        wall = time.perf_counter() - started
    for c in clients:
        c.close()
    return wall, [ms for ms, _ in results], Counter(status for _, status in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=200, help="sequential push deliveries (default 200)")
    parser.add_argument("--burst", type=int, default=500, help="concurrent deliveries in the burst (default 500)")
    parser.add_argument("--threads", type=int, default=16, help="client threads in the burst (default 16)")
    parser.add_argument("--budget", type=float, default=60, help="stop the sequential phase after this many seconds")
    parser.add_argument("--idle", type=float, default=20,
                        help="then wait this long with no traffic and time one more delivery (0: skip)")
    parser.add_argument("--database-url", help="e.g. postgresql+psycopg://root@127.0.0.1:5432/devlink_bench (wiped!)")
    parser.add_argument("--queue-url", help="e.g. redis://127.0.0.1:6379/14 (flushed!)")
    parser.add_argument("--keep", type=Path, help="keep the data directory and server log here")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="devlink-bench-hooks-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DEVLINK_HOME=str(workdir / "home"), DEVLINK_BASE_URL="http://devlink.example.test")
    if args.database_url:
        reset_postgres(args.database_url)
        env["DEVLINK_DATABASE_URL"] = args.database_url
    if args.queue_url:
        reset_redis(args.queue_url)
        env["DEVLINK_QUEUE_URL"] = args.queue_url
    bare, work = make_repositories(workdir)
    secret = secrets.token_urlsafe(32)
    repository_id = link_repository(env, bare, secret)
    deliveries = Deliveries(secret)
    server = start_serve(env, workdir / "serve.log")
    engine = ("postgresql" if args.database_url else "sqlite") + " + " + ("redis" if args.queue_url else "sqlite queue")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            # warm up: first requests pay imports and connection setup
            before, after, message = commit_and_push(work, 0)
            body = deliveries.push(before, after, message)
            assert client.post("/hooks/github", content=body, headers=deliveries.headers(body)).status_code == 202
            wait_idle(client, repository_id)

            started = time.perf_counter()
            accept, visible, pushes, failures = sequential(client, work, deliveries, args.deliveries, args.budget)
            seq_wall = time.perf_counter() - started
            if not accept:
                print("no delivery was accepted")
                return 1
            wait_idle(client, repository_id)

            head = git(work, "rev-parse", "HEAD")
            body = deliveries.push(git(work, "rev-parse", "HEAD~1"), head, "burst")
            wall, burst_ms, statuses = burst(server.url, deliveries, body, args.burst, args.threads)
            drain = wait_idle(client, repository_id)
            view = client.get(f"/api/v1/repositories/{repository_id}").json()

            idle = None
            if args.idle > 0:
                time.sleep(args.idle)
                idle = push_and_deliver(client, work, deliveries, args.deliveries + 1)
                failures += idle is None
    finally:
        server.stop()

    accepted = sum(n for status, n in statuses.items() if status in ("queued", "coalesced"))
    refused = args.burst - accepted
    a, v, p, b = percentiles(accept), percentiles(visible), percentiles(pushes), percentiles(burst_ms)
    print(f"setup              : devlink serve on loopback, {engine}, python {sys.version.split()[0]}")
    print(f"sequential         : {len(accept)} push deliveries in {seq_wall:.1f} s "
          f"(commit + git push + signed POST + poll until visible, one at a time)")
    print(f"  git commit+push  : {fmt(p)}  (client side, not devlink)")
    print(f"  POST answered    : {fmt(a)}")
    print(f"  accepted/s       : {1000 / a['mean']:.0f} (one client, sequential: 1 / mean answer time)")
    print(f"  commit visible   : {fmt(v)}  (delivery sent -> /api/v1/issues/BENCH-i/development shows it)")
    print(f"burst              : {args.burst} deliveries from {args.threads} threads in {wall:.2f} s "
          f"= {accepted / wall:.0f} accepted/s; statuses {dict(statuses)}")
    print(f"  POST answered    : {fmt(b)}")
    print(f"  queue drained in : {drain:.2f} s after the burst; sync state {view['sync']['state']}, "
          f"error {view['sync']['error']}")
    if idle is not None:
        print(f"after {args.idle:.0f} s idle    : answered in {idle[1]:.1f} ms, commit visible after {idle[2]:.0f} ms "
              f"(the queue consumer polls less often while idle)")
    print(f"summary: {accepted / wall:.0f} deliveries/s accepted in a burst, {1000 / a['mean']:.0f}/s sequentially; "
          f"push-to-visible p50 {v['p50']:.0f} ms, p95 {v['p95']:.0f} ms, p99 {v['p99']:.0f} ms, "
          f"max {v['max']:.0f} ms over {len(visible)} deliveries"
          + (f", {idle[2]:.0f} ms after {args.idle:.0f} s idle" if idle else "") + f" ({engine}); "
          f"{failures + refused} failed")
    if args.keep is None:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures or refused else 0


if __name__ == "__main__":
    sys.exit(main())
