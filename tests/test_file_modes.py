"""The data directory is devlink's user's alone: 0700 directories, 0600 files, whatever the umask.

``devlink.db`` (and its ``-wal`` and ``-shm``) holds every commit and the encrypted credentials,
``secret.key`` decrypts them, ``queue.db`` sits beside them and the mirrors hold the repositories.
"""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.sync.jobs import run_sync
from devlink.sync.repositories import add_repository
from gitrepos import GitRepo


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common default umask (group and others may read), set for real for the whole process."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def open_runtime(home: Path) -> Runtime:
    return Runtime.open(load_settings({"DEVLINK_HOME": str(home)}))  # the embedded default: SQLite in home


def use_everything(rt: Runtime, server: Path) -> None:
    """A sync (database, mirror) and the queue (its SQLite file), leaving connections open."""
    repository_id = add_repository(rt, str(server)).id
    run_sync(rt, repository_id, full=False)
    rt.queue.enqueue_sync(repository_id, False, "manual")
    assert rt.queue.huey.pending_count() == 1


def test_a_fresh_runtime_and_a_sync_leave_nothing_for_group_or_others(
    tmp_path: Path, bare_remote: tuple[GitRepo, Path], loose_umask: None
) -> None:
    repo, server = bare_remote
    repo.commit("MODE-1 first")
    repo.git("push", "-q", "origin", "main")
    home = tmp_path / "data" / "home"
    rt = open_runtime(home)
    try:
        use_everything(rt, server)
        files = ["devlink.db", "devlink.db-wal", "devlink.db-shm", "queue.db", "secret.key"]
        if (home / "queue.db-wal").exists():  # Huey's connection is open in WAL mode now
            files += ["queue.db-wal", "queue.db-shm"]
        modes = {name: oct(mode(home / name)) for name in files}
        assert modes == {name: oct(0o600) for name in files}
        assert "queue.db-wal" in files
        assert (oct(mode(home)), oct(mode(home / "mirrors"))) == (oct(0o700), oct(0o700))
        assert any((home / "mirrors").iterdir())  # the mirror is in there
    finally:
        rt.close()


def test_existing_files_are_tightened_on_open(
    tmp_path: Path, bare_remote: tuple[GitRepo, Path], loose_umask: None
) -> None:
    repo, server = bare_remote
    repo.commit("MODE-2 first")
    repo.git("push", "-q", "origin", "main")
    home = tmp_path / "home"
    rt = open_runtime(home)
    use_everything(rt, server)
    rt.close()
    # as an older devlink, or a restore from a backup, would have left them
    for name in ("devlink.db", "queue.db", "secret.key", "mirrors"):
        (home / name).chmod(0o755 if name == "mirrors" else 0o644)
    leftover = home / "devlink.db-wal"
    leftover.touch()
    leftover.chmod(0o664)

    rt = open_runtime(home)
    try:
        rt.queue.huey.pending_count()
        modes = {name: oct(mode(home / name)) for name in ("devlink.db", "devlink.db-wal", "queue.db", "secret.key")}
        assert modes == dict.fromkeys(modes, oct(0o600))
        assert oct(mode(home / "mirrors")) == oct(0o700)
    finally:
        rt.close()


def test_a_shared_directory_given_as_home_keeps_its_mode(tmp_path: Path, loose_umask: None) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    rt = open_runtime(shared)
    rt.close()
    assert (oct(mode(shared)), oct(mode(shared / "devlink.db"))) == (oct(0o755), oct(0o600))
