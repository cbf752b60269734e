"""Every git command devlink runs is bounded: few processes, its own process group, a time limit.

Remotes here are real servers on loopback: dumb HTTP (static files: nothing advertised, no filter),
smart HTTP without ``uploadpack.allowFilter``, and a server that accepts and never answers.  A watch
samples /proc while devlink works: every process that inherited the test's marker variable is one
devlink started (or one those started).  It doubles as a watchdog: a fork chain is killed long before
it could take the machine down.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import devlink.hosts.git as git
from devlink.config import load_settings
from devlink.errors import GitError
from devlink.hosts.git import Mirror
from devlink.runtime import Runtime
from devlink.store.models import Repository
from devlink.sync.jobs import run_sync
from devlink.sync.repositories import add_repository
from gitrepos import (
    DumbHttpServer,
    GitHttpServer,
    GitRepo,
    SilentServer,
    fast_history,
    marked_processes,
    watch_processes,
)

PEAK = 8  # git processes at once, at most, for one clone or fetch


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """SQLite only: these tests are about processes, not the store."""
    rt = Runtime.open(load_settings({"DEVLINK_HOME": str(tmp_path / "home"),
                                     "DEVLINK_DATABASE_URL": f"sqlite:///{tmp_path / 'devlink.db'}"}))
    yield rt
    rt.close()


@pytest.fixture
def dumb_http(tmp_path: Path) -> Iterator[DumbHttpServer]:
    root = tmp_path / "dumb-root"
    root.mkdir()
    server = DumbHttpServer(root)
    yield server
    server.close()


def state(rt: Runtime, repository_id: int) -> tuple[str | None, str | None, int]:
    with rt.sessions() as session:
        row = session.get(Repository, repository_id)
        assert row is not None
        return row.last_error_reason, row.last_error_message, row.commits_indexed


def push_to(repo: GitRepo, bare: Path, message: str) -> None:
    (repo.path / "file.txt").write_text(message)  # a new blob: a partial mirror would lack it
    repo.commit(message)
    repo.git("push", "-q", str(bare), "main")


def sync_watched(rt: Runtime, repository_id: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run one sync while watching devlink's git processes; return the peak, after checking the groups."""
    with watch_processes(monkeypatch, deadline=30) as watch:
        run_sync(rt, repository_id, full=False)
    assert not watch.runaway, f"{watch.peak_git} git processes at once: the watchdog killed them"
    assert watch.git(), "the watch saw no git process at all"
    test_group = os.getpgid(0)
    assert all(seen.pgid != test_group for seen in watch.git()), "git ran in the test's own process group"
    assert watch.alive() == []
    return watch.peak_git


def test_a_dumb_http_remote_is_mirrored_in_full_and_fetched_by_a_handful_of_processes(
    runtime: Runtime, dumb_http: DumbHttpServer, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = dumb_http.bare("static.git")
    push_to(git_repo, bare, "DUMB-1 first")
    dumb_http.publish("static.git")
    repository = add_repository(runtime, dumb_http.url("static.git"))

    peaks = [sync_watched(runtime, repository.id, monkeypatch)]
    mirror = Path(runtime.settings.mirrors_dir) / f"{repository.id}.git"
    assert "partialclonefilter" not in (mirror / "config").read_text()  # nothing advertised: a full clone
    for n in (2, 3):
        push_to(git_repo, bare, f"DUMB-{n} pushed later")
        dumb_http.publish("static.git")
        peaks.append(sync_watched(runtime, repository.id, monkeypatch))
    assert state(runtime, repository.id) == (None, None, 3)
    assert max(peaks) <= PEAK, peaks
    print(f"\ndumb HTTP: peak git processes per sync {peaks}")


def test_a_partial_mirror_of_a_dumb_http_remote_fetches_without_lazy_fetching(
    tmp_path: Path, dumb_http: DumbHttpServer, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A mirror made partial before (by an older devlink): git would fetch every missing blob lazily, each
    # lazy fetch starting the next.  GIT_NO_LAZY_FETCH makes the fetch one plain fetch.
    bare = dumb_http.bare("old.git")
    push_to(git_repo, bare, "OLD-1 first")
    dumb_http.publish("old.git")
    mirror = Mirror(tmp_path / "mirrors" / "1.git", dumb_http.url("old.git"))
    subprocess.run(["git", "clone", "-q", "--bare", "--filter=blob:none", str(bare), str(mirror.path)], check=True)
    mirror.git("config", "remote.origin.url", dumb_http.url("old.git"))
    mirror.git("config", "remote.origin.fetch", "+refs/heads/*:refs/heads/*")
    push_to(git_repo, bare, "OLD-2 later")
    dumb_http.publish("old.git")
    with watch_processes(monkeypatch, deadline=30) as watch:
        mirror.fetch()
    assert not watch.runaway and watch.peak_git <= PEAK, watch.peak_git
    assert mirror.branches()["main"] == git_repo.sha("HEAD")


def test_a_smart_http_remote_without_filter_support_is_mirrored_in_full(
    runtime: Runtime, git_http: GitHttpServer, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = git_http.root / "plain.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    push_to(git_repo, bare, "SMART-1 first")
    repository = add_repository(runtime, git_http.url("plain.git", "robot:s3cr3t-t0ken"))

    peaks = [sync_watched(runtime, repository.id, monkeypatch)]
    mirror = Path(runtime.settings.mirrors_dir) / f"{repository.id}.git"
    assert "partialclonefilter" not in (mirror / "config").read_text()
    push_to(git_repo, bare, "SMART-2 pushed later")
    peaks.append(sync_watched(runtime, repository.id, monkeypatch))
    assert state(runtime, repository.id) == (None, None, 2)
    assert max(peaks) <= PEAK, peaks
    print(f"\nsmart HTTP without filter: peak git processes per sync {peaks}")


def test_a_smart_http_remote_that_filters_gets_a_partial_mirror(
    runtime: Runtime, git_http: GitHttpServer, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = git_http.root / "filtering.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "uploadpack.allowFilter", "true"], check=True)
    push_to(git_repo, bare, "PART-1 first")
    repository = add_repository(runtime, git_http.url("filtering.git", "robot:s3cr3t-t0ken"))
    peaks = [sync_watched(runtime, repository.id, monkeypatch)]
    mirror = Path(runtime.settings.mirrors_dir) / f"{repository.id}.git"
    assert "partialclonefilter = blob:none" in (mirror / "config").read_text()
    push_to(git_repo, bare, "PART-2 later")
    peaks.append(sync_watched(runtime, repository.id, monkeypatch))
    assert state(runtime, repository.id) == (None, None, 2)
    assert max(peaks) <= PEAK, peaks


# -- time limits ---------------------------------------------------------------------


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_a_server_that_never_answers_is_given_up_at_the_time_limit_with_every_process_gone(
    runtime: Runtime, silent: SilentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git, "LIST_TIMEOUT", 1.5)
    started = time.monotonic()
    with watch_processes(monkeypatch, deadline=20) as watch, pytest.raises(GitError) as hung:
        add_repository(runtime, silent.url("x.git"))
    elapsed = time.monotonic() - started
    assert not watch.runaway, "the watchdog had to kill git: devlink did not"
    assert (hung.value.reason, hung.value.message) == (
        "unreachable", f"git gave no answer for {silent.url('x.git')} within 1.5 s")
    assert 1.5 <= elapsed < 5, elapsed
    assert {seen.comm for seen in watch.git()} >= {"git", "git-remote-http"}  # the helper ran, in the group
    assert len({seen.pgid for seen in watch.git()}) == 1
    assert watch.alive() == []


def test_a_clone_that_hangs_is_killed_at_the_network_limit(
    tmp_path: Path, silent: SilentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git, "NETWORK_TIMEOUT", 1.0)
    mirror = Mirror(tmp_path / "mirrors" / "1.git", silent.url("x.git"))
    started = time.monotonic()
    with watch_processes(monkeypatch, deadline=20) as watch, pytest.raises(GitError) as hung:
        mirror.clone(partial=False)
    assert not watch.runaway and time.monotonic() - started < 4
    assert hung.value.reason == "unreachable" and "within 1 s" in hung.value.message
    assert watch.alive() == []
    assert not mirror.exists() and list((tmp_path / "mirrors").iterdir()) == []


@pytest.fixture
def long_mirror(tmp_path: Path) -> Mirror:
    """A mirror whose commit stream outlasts the pipes: git is still running while the caller reads slowly."""
    bare = tmp_path / "long.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    fast_history(bare, 20_000)
    mirror = Mirror(tmp_path / "mirrors" / "1.git", str(bare))
    mirror.clone()
    return mirror


def test_a_commit_stream_past_its_time_limit_fails_instead_of_ending_short(
    long_mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git, "READ_TIMEOUT", 0.5)
    with watch_processes(monkeypatch, deadline=20) as watch:
        stream = long_mirror.commits(long_mirror.branches().values(), [])
        next(stream)
        assert watch.alive(), "git finished before the limit: nothing to test"
        time.sleep(1.0)  # a consumer slower than the limit
        with pytest.raises(GitError) as late:
            list(stream)
    assert late.value.reason == "git" and "longer than 0.5 s" in late.value.message
    assert not watch.runaway and watch.alive() == []


def test_a_stream_that_ends_in_time_is_no_error_however_slow_the_caller(
    tmp_path: Path, bare_remote: tuple[GitRepo, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, bare = bare_remote
    shas = [repo.commit(f"SLOW-{n}") for n in range(3)]
    repo.git("push", "-q", "origin", "main")
    mirror = Mirror(tmp_path / "mirrors" / "1.git", str(bare))
    mirror.clone()
    monkeypatch.setattr(git, "READ_TIMEOUT", 0.5)
    stream = mirror.commits([shas[-1]], [])
    first = next(stream)
    time.sleep(1.0)
    assert [first.sha, *[c.sha for c in stream]] == shas[::-1]


def test_a_caller_that_stops_reading_leaves_no_git_running(
    long_mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    with watch_processes(monkeypatch, deadline=20) as watch:
        stream = long_mirror.commits(long_mirror.branches().values(), [])
        next(stream)
        running = watch.alive()
        stream.close()
        assert watch.alive() == []
    assert running, "git finished before the caller stopped: nothing to test"
    # rev-list and cat-file each lead their own group (a short-lived rev-list may escape the sampling)
    assert watch.git() and all(seen.pid == seen.pgid for seen in watch.git())


def test_git_started_by_a_devlink_that_is_killed_still_ends_at_its_limit(silent: SilentServer) -> None:
    """SIGKILL leaves devlink no chance to clean up: git's supervisor ends the group on its own."""
    mark = f"orphan-{os.urandom(6).hex()}"
    script = (
        "import devlink.hosts.git as g\n"
        "g._INHERITED = g._INHERITED | {'DEVLINK_TEST_ORPHAN'}\n"
        "g.LIST_TIMEOUT, g.SUPERVISOR_SLACK = 2.0, 1.0\n"
        f"g.check_remote({silent.url('x.git')!r})\n"
    )
    devlink = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, DEVLINK_TEST_ORPHAN=mark))
    marker = f"DEVLINK_TEST_ORPHAN={mark}".encode()
    try:
        deadline = time.monotonic() + 20
        while not [pid for pid, seen in marked_processes(marker) if seen[0].startswith("git")]:
            assert time.monotonic() < deadline, "devlink never started git"
            time.sleep(0.01)
    finally:
        devlink.kill()
        devlink.wait()
    killed_at = time.monotonic()
    assert [pid for pid, _ in marked_processes(marker)], "git ended with devlink: nothing was tested"
    while [pid for pid, _ in marked_processes(marker)]:
        assert time.monotonic() - killed_at < 10, "git outlived its limit once devlink was gone"
        time.sleep(0.05)
