"""Key rotation on SQLite and PostgreSQL: secrets stored by the real services, re-encrypted, read with the new key."""

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from devlink.config import load_settings
from devlink.crypto import Vault
from devlink.errors import ConfigError, Conflict
from devlink.runtime import Runtime
from devlink.store.tracker import SmartCommitRun
from devlink.sync.accounts import AccountOptions, configure_host
from devlink.sync.jobs import run_sync
from devlink.sync.repositories import add_repository
from devlink.sync.secrets import Unreadable, check_secrets, rotate_key
from devlink.sync.trackers import use_outside
from gitrepos import GitHttpServer, GitRepo
from jira_stub import JiraStub
from services import make_env

pytestmark = pytest.mark.timeout(120)

JIRA_TOKEN = "jira-secret-token-1234"

#: (table, column, JSON option or None): what the fixture stores, and its plain value
STORED = {
    ("repositories", "url_secret", None): "robot:s3cr3t-t0ken",
    ("hosts", "oauth_client_secret", None): "oauth-client-secret",
    ("hosts", "options", "app_webhook_secret"): "app-webhook-secret",
    ("tracker_connections", "credential", None): JIRA_TOKEN,
}


@pytest.fixture
def jira() -> Iterator[JiraStub]:
    with JiraStub(cloud=False) as stub:
        stub.add_user("bot", email="bot@example.com", display_name="devlink bot")
        stub.add_pat(JIRA_TOKEN, "bot")
        yield stub


def store_secrets(rt: Runtime, git_http: GitHttpServer, bare: Path, jira: JiraStub) -> int:
    """A repository over HTTP with a password (and its push token), a host's OAuth and App secrets, a Jira token."""
    subprocess.run(["git", "clone", "-q", "--bare", str(bare), str(git_http.root / "team.git")], check=True)
    repository = add_repository(rt, git_http.url("team.git", "robot:s3cr3t-t0ken"))
    configure_host(rt, AccountOptions(name="", web_url="https://github.example.com"),
                   oauth_client_id="client-id", oauth_client_secret="oauth-client-secret",
                   host_options={"app_id": "4242", "app_webhook_secret": "app-webhook-secret"})
    use_outside(rt, "jira", url=jira.url, token=JIRA_TOKEN)
    return repository.id


def stored_values(rt: Runtime) -> dict[tuple[str, str, str | None], str]:
    """The stored tokens of ``STORED`` plus every push token, read with SQL (not through the code under test)."""
    found: dict[tuple[str, str, str | None], str] = {}
    with rt.engine.connect() as db:
        for (table, column, option) in STORED:
            [value] = db.execute(text(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")).scalars().all()
            found[(table, column, option)] = json.loads(value)[option] if option else value
        for index, token in enumerate(db.execute(text("SELECT hook_token FROM repositories")).scalars()):
            found[("repositories", "hook_token", str(index))] = token
    return found


def key_lines(rt: Runtime) -> list[str]:
    return (rt.settings.home / "secret.key").read_text().splitlines()


@pytest.fixture
def stored(runtime: Runtime, git_http: GitHttpServer, bare_remote: tuple[GitRepo, Path],
           jira: JiraStub) -> tuple[Runtime, int]:
    repo, bare = bare_remote
    repo.commit("APP-1 first")
    repo.git("push", "-q", "origin", "main")
    return runtime, store_secrets(runtime, git_http, bare, jira)


def test_rotate_with_the_key_file(stored: tuple[Runtime, int], tmp_path: Path) -> None:
    rt, repository_id = stored
    [old] = key_lines(rt)
    before = stored_values(rt)
    plain = {place: rt.vault.decrypt(token) for place, token in before.items()}
    assert {k: v for k, v in plain.items() if k[1] != "hook_token"} == STORED

    done = rotate_key(rt)
    assert (done.source, done.re_encrypted, done.unreadable) == ("file", len(before), [])
    [new] = key_lines(rt)
    assert new != old
    assert stat.S_IMODE((rt.settings.home / "secret.key").stat().st_mode) == 0o600
    assert list(rt.settings.home.glob(".secret.key*")) == []  # no scratch file left behind
    after = stored_values(rt)
    for place, token in after.items():
        assert Vault(new.encode()).decrypt(token) == plain[place], place
        assert not Vault(old.encode()).readable(token), place
    assert check_secrets(rt).readable == len(before) and check_secrets(rt).unreadable == []

    # a process started afterwards reads the new file alone and works: the repository syncs over HTTP
    fresh = Runtime.open(load_settings(make_env(rt.settings.home, rt.settings.database_url)))
    try:
        assert run_sync(fresh, repository_id, full=True)[0].commits_new == 1
        assert check_secrets(fresh).unreadable == []
    finally:
        fresh.close()

    again = rotate_key(rt)  # a second rotation works the same
    [newer] = key_lines(rt)
    assert (again.re_encrypted, newer != new) == (len(before), True)
    assert all(Vault(newer.encode()).decrypt(token) == plain[place] for place, token in stored_values(rt).items())


def test_rotate_with_the_variable(runtime: Runtime, git_http: GitHttpServer, bare_remote: tuple[GitRepo, Path],
                                  jira: JiraStub, database_url: str, tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    home = tmp_path / "env-home"

    def open_with(keys: str) -> Runtime:
        return Runtime.open(load_settings(make_env(home, database_url, DEVLINK_SECRET_KEY=keys)))

    rt = open_with(old)
    try:
        store_secrets(rt, git_http, bare_remote[1], jira)
        plain = {place: rt.vault.decrypt(token) for place, token in stored_values(rt).items()}
        single = rotate_key(rt)  # one key listed: a key to put first, nothing changed
        assert single.re_encrypted == 0 and single.new_key and Vault(single.new_key.encode())
        assert all(Vault(old.encode()).readable(token) for token in stored_values(rt).values())
    finally:
        rt.close()

    rt = open_with(f" {new} , {old} ")  # spaces around the commas are allowed
    try:
        done = rotate_key(rt)
        assert (done.source, done.re_encrypted, done.old_keys, done.unreadable) == ("env", len(plain), 1, [])
        for place, token in stored_values(rt).items():
            assert Vault(new.encode()).decrypt(token) == plain[place], place
            assert not Vault(old.encode()).readable(token), place
        assert rotate_key(rt).re_encrypted == 0  # everything is under the first key already
    finally:
        rt.close()
    assert not (home / "secret.key").exists()  # with the variable, no key file is made

    rt = open_with(new)  # the old key removed, as rotate said
    try:
        assert check_secrets(rt).readable == len(plain) and check_secrets(rt).unreadable == []
    finally:
        rt.close()


def test_check_names_what_it_cannot_decrypt(stored: tuple[Runtime, int], database_url: str) -> None:
    rt, repository_id = stored
    others = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    wrong = Runtime.open(load_settings(make_env(rt.settings.home, database_url, DEVLINK_SECRET_KEY=others)))
    try:
        found = check_secrets(wrong)
        assert found.readable == 0
        assert sorted(map(str, found.unreadable)) == sorted([
            "hosts.oauth_client_secret, row 2", "hosts.options[app_webhook_secret], row 2",
            f"repositories.hook_token, row {repository_id}", f"repositories.url_secret, row {repository_id}",
            "tracker_connections.credential, row 1"])
        assert all("robot" not in str(each) and "secret-token" not in str(each) for each in found.unreadable)
        # a rotation leaves what it cannot read as it is, and says so
        assert rotate_key(wrong).unreadable == found.unreadable and rotate_key(wrong).re_encrypted == 0
    finally:
        wrong.close()
    assert check_secrets(rt).unreadable == []  # the right key still reads every one


def test_a_bad_key_is_named_by_position(tmp_path: Path) -> None:
    good = Fernet.generate_key().decode()
    with pytest.raises(ConfigError) as caught:
        Vault.from_settings(load_settings(make_env(tmp_path, DEVLINK_SECRET_KEY=f"{good},not-a-key-xyz")))
    assert caught.value.message == "key 2 of 2 in DEVLINK_SECRET_KEY is not a valid key"
    assert "not-a-key-xyz" not in f"{caught.value.message} {caught.value.hint}"
    with pytest.raises(ConfigError, match=r"^DEVLINK_SECRET_KEY holds no key$"):
        Vault.from_settings(load_settings(make_env(tmp_path, DEVLINK_SECRET_KEY=" , ")))
    (tmp_path / "secret.key").write_text(f"not-a-key-xyz\n{good}\n")
    with pytest.raises(ConfigError) as caught:
        Vault.from_settings(load_settings(make_env(tmp_path)))
    assert caught.value.message == f"key 1 of 2 in {tmp_path / 'secret.key'} is not a valid key"


def test_signatures_use_the_first_key_and_verify_with_every_one() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    marker = Vault(old).sign("KAFKA-1|comment|abc")  # a Jira marker left before the rotation
    both = Vault(new, old)
    assert both.sign("x") == Vault(new).sign("x") != Vault(old).sign("x")  # sessions: signed with the first key
    assert both.verify("KAFKA-1|comment|abc", marker) and not Vault(new).verify("KAFKA-1|comment|abc", marker)
    assert not both.verify("KAFKA-2|comment|abc", marker)
    assert repr(both) == "Vault(keys=2, [secure])" and old.decode() not in repr(both)


def test_leaves_a_plain_value_alone(runtime: Runtime) -> None:
    """An options value that is not a Fernet token, and a host without secrets, are neither counted nor changed."""
    configure_host(runtime, AccountOptions(name="", web_url="https://github.example.com"),
                   host_options={"app_id": "4242"})
    with runtime.engine.connect() as db:
        before = db.execute(text("SELECT options FROM hosts")).scalar()
    assert rotate_key(runtime).re_encrypted == 0 and check_secrets(runtime).readable == 0
    with runtime.engine.connect() as db:
        assert db.execute(text("SELECT options FROM hosts")).scalar() == before
    assert check_secrets(runtime).unreadable == [] and Unreadable("a.b", "1").__str__() == "a.b, row 1"


def test_refuses_while_a_jira_smart_commit_is_pending(stored: tuple[Runtime, int]) -> None:
    """Its retry recognises devlink's marker by a signature of the current key: the file must not lose it."""
    rt, repository_id = stored
    with rt.sessions.begin() as session:  # what a pass leaves when Jira went down between claim and record
        session.add(SmartCommitRun(commit_sha="a" * 40, issue_key="KAFKA-1", position=0, repository_id=repository_id,
                                   command="comment", outcome="pending"))
    [old] = key_lines(rt)
    with pytest.raises(Conflict, match="1 smart commit"):
        rotate_key(rt)
    assert key_lines(rt) == [old]
    assert rotate_key(rt, force=True).re_encrypted == len(STORED) + 1
