"""``devlink user`` and ``devlink token`` as a person on the server runs them (in-process)."""

from pathlib import Path

import pytest

from climain import InProcessCli
from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.sync.people import sign_in, token_principal


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(tmp_path / "home", monkeypatch, capsys)


def _runtime(cli: InProcessCli) -> Runtime:
    return Runtime.open(load_settings({"DEVLINK_HOME": str(cli.home)}))


def test_add_list_passwd_and_remove(cli: InProcessCli) -> None:
    added = cli("user", "add", "ada", "--admin", "--email", "ada@example.com", "--password", "-",
                input="a long enough password\n")
    assert (added.code, added.stdout) == (0, "user ada (admin)\n"), added.stderr
    generated = cli("user", "add", "bo")  # no terminal, no --password: one is made and shown once
    assert generated.code == 0 and generated.stdout.startswith("user bo (member)\npassword: ")
    bo_password = generated.stdout.split("password: ", 1)[1].split()[0]
    rt = _runtime(cli)
    try:
        assert sign_in(rt, "bo", bo_password, "127.0.0.1")[0].role == "member"
        assert sign_in(rt, "ada", "a long enough password", "127.0.0.1")[0].admin
    finally:
        rt.close()
    listed = cli("user", "list")
    assert listed.stdout.splitlines() == ["ada\tadmin\tada@example.com", "bo\tmember\t"]
    assert cli("tracker", "user", "cy", "--email", "cy@example.com").code == 0  # the same records
    assert "cy\tmember\tcy@example.com  (no password yet)" in cli("user", "list").stdout
    changed = cli("user", "passwd", "cy", "--password", "-", input="cy's own password\n")
    assert (changed.code, changed.stdout) == (0, "password of cy set\n")
    assert cli("user", "role", "cy", "admin").code == 0
    assert "cy\tadmin" in cli("user", "list").stdout
    assert cli("user", "remove", "bo").code == 0
    assert "bo\tmember\t  (no password yet)" in cli("user", "list").stdout


def test_passwords_never_come_from_the_command_line(cli: InProcessCli) -> None:
    refused = cli("user", "add", "ada", "--password", "hunter2hunter2")
    assert refused.code == 1 and "stdin" in refused.stderr and "hunter2" not in refused.stderr
    short = cli("user", "add", "ada", "--password", "-", input="short\n")
    assert short.code == 1 and "at least 10 characters" in short.stderr
    assert "ada" not in cli("user", "list").stdout


def test_tokens_are_shown_once_listed_and_revoked(cli: InProcessCli) -> None:
    assert cli("user", "add", "ada", "--password", "-", input="a long enough password\n").code == 0
    made = cli("token", "create", "ci", "--user", "ada", "--read-only", "--expires", "7")
    assert made.code == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("dlk_") and "shown only now" in made.stderr and secret not in made.stderr
    listed = cli("token", "list")
    assert secret not in listed.stdout
    line = listed.stdout.strip()
    assert line.split("\t")[1:5] == ["ada", "ci", secret[:8] + "…", "read-only"] and "last used never" in line
    rt = _runtime(cli)
    try:
        assert token_principal(rt, secret).read_only
    finally:
        rt.close()
    token_id = line.split("\t")[0]
    assert cli("token", "revoke", token_id).stdout == f"token {token_id} (ci of ada) revoked\n"
    assert "revoked" in cli("token", "list").stdout
    missing = cli("token", "create", "x", "--user", "nobody")
    assert missing.code == 1 and "no user 'nobody'" in missing.stderr


def test_grant_gives_one_permission_and_leaves_the_others(cli: InProcessCli) -> None:
    from devlink.sync.access import browsable_projects, can_view_development
    from devlink.sync.principals import Principal

    assert cli("user", "add", "ada", "--password", "-", input="a long enough password\n").code == 0
    assert cli("tracker", "project", "APP", "App").code == 0  # every permission to everyone
    granted = cli("tracker", "grant", "APP", "view_development", "ada")
    assert (granted.code, granted.stdout) == (0, "APP view_development: ada\n"), granted.stderr
    assert cli("user", "add", "bo", "--password", "-", input="a long enough password\n").code == 0
    rt = _runtime(cli)
    try:
        with rt.sessions() as session:
            from devlink.store.tracker import TrackerUser

            ids = {u.username: u.id for u in session.query(TrackerUser)}
        ada, bo = (Principal(ids[name], name, "member") for name in ("ada", "bo"))
        assert can_view_development(rt, ada, "APP") and not can_view_development(rt, bo, "APP")
        with rt.sessions() as session:
            assert browsable_projects(session, bo) == {"APP"}  # browse was left to everyone
    finally:
        rt.close()
    assert cli("tracker", "grant", "APP", "view_development").stdout == "APP view_development: admins only\n"
    unknown = cli("tracker", "grant", "APP", "see_everything", "ada")
    assert unknown.code == 1 and "unknown permission" in unknown.stderr
