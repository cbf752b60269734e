"""``devlink secret-key rotate`` and ``check`` as a person on the server runs them (in-process)."""

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from climain import InProcessCli
from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.sync.repositories import find_repository, hook_token
from gitrepos import GitRepo


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(tmp_path / "home", monkeypatch, capsys)


def _push_token(cli: InProcessCli, **env: str) -> str:
    rt = Runtime.open(load_settings({"DEVLINK_HOME": str(cli.home), **env}))
    try:
        with rt.sessions() as session:
            return hook_token(rt, find_repository(session, "server"))
    finally:
        rt.close()


def test_rotate_and_check_with_the_key_file(cli: InProcessCli, bare_remote: tuple[GitRepo, Path]) -> None:
    repo, bare = bare_remote
    repo.commit("APP-1 first")
    repo.git("push", "-q", "origin", "main")
    assert cli("repo", "add", str(bare)).code == 0  # stores its push token encrypted
    token = _push_token(cli)
    old = (cli.home / "secret.key").read_text()

    rotated = cli("secret-key", "rotate")
    assert rotated.code == 0, rotated.stderr
    assert rotated.stdout.splitlines()[0] == "1 secret re-encrypted"
    assert "everyone signs in again" in rotated.stdout
    new = (cli.home / "secret.key").read_text()
    assert new != old and len(new.splitlines()) == 1
    assert stat.S_IMODE((cli.home / "secret.key").stat().st_mode) == 0o600
    assert _push_token(cli) == token

    checked = cli("secret-key", "check")
    assert (checked.code, checked.stdout) == (0, "1 secret can be decrypted\n")

    (cli.home / "secret.key").write_text(old)  # the old key back: the push token is unreadable now
    failed = cli("secret-key", "check")
    assert failed.code == 1
    assert failed.stdout == "0 secrets can be decrypted\ncannot decrypt: repositories.hook_token, row 1\n"
    assert "1 secret cannot be decrypted" in failed.stderr and token not in failed.stdout + failed.stderr


def test_rotate_with_the_variable(cli: InProcessCli, bare_remote: tuple[GitRepo, Path],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    old = Fernet.generate_key().decode()
    monkeypatch.setenv("DEVLINK_SECRET_KEY", old)
    assert cli("repo", "add", str(bare_remote[1])).code == 0
    token = _push_token(cli, DEVLINK_SECRET_KEY=old)

    single = cli("secret-key", "rotate")
    assert single.code == 0, single.stderr
    lines = single.stdout.splitlines()
    assert lines[0].startswith("DEVLINK_SECRET_KEY lists one key") and "Put it first" in lines[2]
    new = lines[1]
    Fernet(new.encode())  # a usable key

    monkeypatch.setenv("DEVLINK_SECRET_KEY", f"{new},{old}")
    done = cli("secret-key", "rotate")
    assert done.code == 0, done.stderr
    assert done.stdout.splitlines()[0] == "1 secret re-encrypted"
    assert "remove the 1 old key after the first from DEVLINK_SECRET_KEY" in done.stdout
    assert _push_token(cli, DEVLINK_SECRET_KEY=new) == token
    assert not (cli.home / "secret.key").exists()

    monkeypatch.setenv("DEVLINK_SECRET_KEY", f"{new},not-a-key")
    bad = cli("secret-key", "check")
    assert bad.code == 1
    assert "key 2 of 2 in DEVLINK_SECRET_KEY is not a valid key" in bad.stderr and "not-a-key\n" not in bad.stderr
