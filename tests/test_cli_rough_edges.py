"""What a new user ran into: Ctrl-C in a backfill, a pipe closed early, a repository linked twice through its
``.git``, errors that pointed the wrong way, a second ``serve`` of the same data directory, bad serve options."""

import json
import os
import pty
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import devlink.sync.jobs as jobs
from climain import InProcessCli
from devlink.config import SERVER_FILE, record_server
from devlink.errors import ConfigError, DevlinkError
from devlink.store.models import Repository
from gitrepos import GitRepo


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(tmp_path / "home", monkeypatch, capsys)


def repository_row(cli: InProcessCli, name: str) -> dict[str, Any]:
    listed = cli("repo", "list", "--json")
    assert listed.code == 0, listed.stderr
    return next(row for row in json.loads(listed.stdout) if row["name"] == name)


def test_ctrl_c_in_a_backfill_says_how_to_resume_and_leaves_the_repository_free(
    cli: InProcessCli, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(1, 6):
        git_repo.commit(f"CTRL-{number} commit {number}")
    real = jobs.sync_repository

    def pressed_ctrl_c(*args: Any, **kwargs: Any) -> Any:
        def progress(done: int, total: int | None) -> None:
            raise KeyboardInterrupt  # what SIGINT raises in the main thread, half-way through

        return real(*args, **{**kwargs, "progress": progress})

    with monkeypatch.context() as patched:
        patched.setattr(jobs, "sync_repository", pressed_ctrl_c)
        interrupted = cli("repo", "add", str(git_repo.path), "--name", "app")
    assert interrupted.code == 130
    assert "error: interrupted: app keeps the" in interrupted.stderr
    assert "devlink sync app --wait resumes where it stopped" in interrupted.stderr
    row = repository_row(cli, "app")
    assert row["sync"]["state"] == "queued" and row["sync"]["error"]["reason"] == "interrupted", row["sync"]

    resumed = cli("sync", "app", "--wait")
    assert resumed.code == 0, resumed.stderr
    assert repository_row(cli, "app")["sync"]["commits_indexed"] == 5


@pytest.mark.parametrize("full", [False, True], ids=["soft", "full"])
def test_an_interrupted_sync_leaves_the_same_kind_of_sync_due(
    cli: InProcessCli, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch, full: bool
) -> None:
    """A full sync interrupted must come back as a full one: a soft sync would never re-read the rest."""
    from devlink.config import load_settings
    from devlink.runtime import Runtime
    from devlink.sync.repositories import add_repository

    git_repo.commit("LOCK-1 first")
    rt = Runtime.open(load_settings())
    try:
        repository = add_repository(rt, str(git_repo.path))

        def progress(done: int, total: int | None) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            jobs.run_sync(rt, repository.id, full=full, progress=progress)
        with rt.sessions() as session:
            row = session.get(Repository, repository.id)
            assert row is not None
            assert (row.sync_state, row.sync_kind, row.sync_holder, row.last_error_reason) == (
                "queued", "full" if full else "soft", None, "interrupted")
        monkeypatch.setattr(jobs, "ENQUEUE_GRACE", timedelta(0))
        queued: list[tuple[int, bool, str]] = []
        assert jobs.recover(rt, lambda *job: queued.append(job), lambda: set()) == [repository.id]
        assert queued == [(repository.id, full, "recover")]  # a consumer's sweep queues the same kind
    finally:
        rt.close()


def test_a_closed_pipe_ends_issue_quietly(tmp_path: Path, git_repo: GitRepo) -> None:
    """``devlink issue KEY | head -1`` printed a BrokenPipeError traceback."""
    for number in range(300):
        git_repo.commit(f"PIPE-1 change {number}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLINK_")}
    env["DEVLINK_HOME"] = str(tmp_path / "home")
    subprocess.run([sys.executable, "-m", "devlink", "tracker", "project", "PIPE", "Pipes"], env=env, check=True,
                   capture_output=True, timeout=120)
    subprocess.run([sys.executable, "-m", "devlink", "repo", "add", str(git_repo.path)], env=env, check=True,
                   capture_output=True, timeout=120)
    shown = subprocess.run(f"{sys.executable} -m devlink issue PIPE-1 | head -1", shell=True, env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.stdout.startswith("PIPE-1"), shown.stdout
    assert "Traceback" not in shown.stderr and "BrokenPipe" not in shown.stderr, shown.stderr


def test_a_work_trees_git_directory_is_that_work_tree(cli: InProcessCli, git_repo: GitRepo) -> None:
    git_repo.commit("TWICE-1 one commit")
    assert cli("repo", "add", str(git_repo.path), "--name", "app").code == 0
    again = cli("repo", "add", str(git_repo.path / ".git"))
    assert again.code == 1
    assert f"{git_repo.path / '.git'} is already linked, as app" in again.stderr


def test_what_is_wrong_with_the_location_comes_before_a_name_clash(
    cli: InProcessCli, git_repo: GitRepo, tmp_path: Path
) -> None:
    git_repo.commit("NAME-1 one commit")
    assert cli("repo", "add", str(git_repo.path), "--name", "kafka").code == 0
    already = cli("repo", "add", str(git_repo.path), "--name", "kafka")
    assert "is already linked, as kafka" in already.stderr and "--name" not in already.stderr
    missing = cli("repo", "add", str(tmp_path / "nope"), "--name", "kafka")
    assert "does not exist" in missing.stderr and "named 'kafka'" not in missing.stderr
    other = GitRepo(tmp_path / "other")
    other.commit("NAME-2 elsewhere")
    clash = cli("repo", "add", str(other.path), "--name", "kafka")
    assert "a repository named 'kafka' is already linked" in clash.stderr


def test_repo_hook_names_the_hooks_directory_git_uses(cli: InProcessCli, git_repo: GitRepo) -> None:
    git_repo.commit("HOOK-1 one commit")
    assert cli("repo", "add", str(git_repo.path)).code == 0
    printed = cli("repo", "hook", str(git_repo.path))
    assert f"writes both into {git_repo.path / '.git' / 'hooks'};" in printed.stderr.replace("\n", " ")


def test_a_second_serve_of_the_same_home_leaves_the_first_ones_note(tmp_path: Path) -> None:
    home = tmp_path / "home"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        home.mkdir()
        (home / SERVER_FILE).write_text(json.dumps({"url": "http://127.0.0.1:8765", "pid": other.pid,
                                                    "machine": os.uname().nodename}))
        assert record_server(home, "http://127.0.0.1:8001") == "http://127.0.0.1:8765"
        assert json.loads((home / SERVER_FILE).read_text())["pid"] == other.pid
    finally:
        other.kill()
        other.wait()
    assert record_server(home, "http://127.0.0.1:8001") == "http://127.0.0.1:8001"  # that one is gone now
    assert json.loads((home / SERVER_FILE).read_text())["pid"] == os.getpid()
    # a note from another machine name (a container restarted under a new name) cannot be checked: replaced
    (home / SERVER_FILE).write_text(json.dumps({"url": "http://0.0.0.0:8000", "pid": 1, "machine": "3f2c9a1b7e0d"}))
    assert record_server(home, "http://0.0.0.0:8080") == "http://0.0.0.0:8080"


@pytest.mark.parametrize(("host", "port", "reason", "hint"), [
    ("127.0.0.1", 99999, "bad_port", None),
    ("no-such-host.invalid", 8799, "bad_host", "--host takes an address of this machine"),
    ("192.0.2.1", 8799, "bad_host", "--host takes an address of this machine"),  # not this machine's
])
def test_serve_options_that_cannot_work_are_clear_errors(host: str, port: int, reason: str, hint: str | None) -> None:
    from devlink.cli import _refuse_a_taken_port

    with pytest.raises(DevlinkError) as refused:
        _refuse_a_taken_port(host, port)
    assert refused.value.reason == reason
    assert hint is None or hint in (refused.value.hint or "")


def test_a_data_directory_that_is_a_file_is_a_clear_error(cli: InProcessCli, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from devlink.crypto import private_directory

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for path in (blocker, blocker / "below" / "it"):
        with pytest.raises(ConfigError) as refused:
            private_directory(path)
        assert "is not a directory" in refused.value.message
    monkeypatch.setenv("DEVLINK_HOME", str(blocker))
    listed = cli("repo", "list")
    assert listed.code == 1 and "is not a directory" in listed.stderr and "Traceback" not in listed.stderr


def test_keys_at_a_terminal_says_it_reads_standard_input(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLINK_")}
    env["DEVLINK_HOME"] = str(tmp_path / "home")
    process = subprocess.Popen([sys.executable, "-m", "devlink", "keys"], stdin=follower, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    os.close(follower)
    os.write(leader, b"fix KEY-1\n\x04")  # a line, then Ctrl-D
    out, err = process.communicate(timeout=60)
    os.close(leader)
    assert process.returncode == 0
    assert b"standard input" in err and b"Ctrl-D" in err
    assert out == b"KEY-1\n"
