"""Connecting Jira: verified first, clear errors, the credential kept encrypted and shown nowhere; CLI and REST."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from climain import InProcessCli
from devlink.errors import TrackerError
from devlink.runtime import Runtime
from devlink.store.tracker import TrackerConnection
from devlink.sync.trackers import describe, known_project_keys, use_builtin, use_outside
from jira_stub import JiraStub
from tls import tls_front

pytestmark = pytest.mark.timeout(60)

TOKEN = "jira-pat-that-must-stay-secret"
BOT = "bot@example.com"


@pytest.fixture
def dc() -> Iterator[JiraStub]:
    with JiraStub(cloud=False) as stub:
        stub.add_user("bot", email=BOT, display_name="devlink bot")
        stub.add_pat(TOKEN, "bot")
        stub.add_project("KAFKA", "Kafka")
        yield stub
        assert stub.violations == []


@pytest.fixture
def cloud() -> Iterator[JiraStub]:
    with JiraStub(cloud=True) as stub:
        stub.add_user("bot", email=BOT, display_name="devlink bot")
        stub.add_api_token(BOT, TOKEN, "bot")
        for n in range(7):
            stub.add_project(f"P{n}X", f"Project {n}")
        stub.page_size = 3  # the paginated project search, followed to its last page
        yield stub
        assert stub.violations == []


def refused(runtime: Runtime, **kwargs: object) -> TrackerError:
    with pytest.raises(TrackerError) as error:
        use_outside(runtime, "jira", token=TOKEN, **kwargs)  # type: ignore[arg-type]
    return error.value


def test_data_center_connects_with_a_bearer_token_and_keeps_it_encrypted(runtime: Runtime, dc: JiraStub) -> None:
    change = use_outside(runtime, "jira", url=dc.url + "/", token=TOKEN)
    assert any("Jira Data Center / Server 10.3.4" in note and "devlink bot" in note for note in change.notes)
    assert any("devlink sync --full" in note for note in change.notes)
    view = describe(runtime)
    assert (view["kind"], view["deployment"], view["url"], view["user"]) == ("jira", "datacenter", dc.url, "bot")
    assert TOKEN not in json.dumps(view)
    with runtime.sessions() as session:
        stored = session.scalar(select(TrackerConnection.credential))
        assert stored and TOKEN not in stored and runtime.vault.decrypt(stored) == TOKEN
        dump = "\n".join(str(row) for row in session.execute(text("SELECT * FROM tracker_connections")))
    assert TOKEN not in dump
    # what kind of site it is was asked before the token went anywhere; then only the bearer token was sent
    first = dc.requests[0]
    assert first[1].endswith("/serverInfo") and "authorization" not in {h.lower() for h in first[3]}
    sent = {value for _, _, _, headers, _ in dc.requests for name, value in headers.items()
            if name.lower() == "authorization"}
    assert sent == {f"Bearer {TOKEN}"}
    assert known_project_keys(runtime) == frozenset({"KAFKA"})


def test_cloud_connects_with_basic_auth_and_pages_through_projects(runtime: Runtime, cloud: JiraStub) -> None:
    use_outside(runtime, "jira", url=cloud.url, token=TOKEN, email=BOT)
    assert describe(runtime)["deployment"] == "cloud"
    assert known_project_keys(runtime) == frozenset(f"P{n}X" for n in range(7))
    asked = len(cloud.requests)
    assert known_project_keys(runtime) == frozenset(f"P{n}X" for n in range(7))
    assert len(cloud.requests) == asked  # cached: a sync or webhook does not ask Jira again


def test_a_new_project_is_picked_up_once_the_cache_expires(runtime: Runtime, dc: JiraStub) -> None:
    from sqlalchemy import update

    from devlink.store.models import utcnow
    from devlink.store.tracker import TrackerCacheEntry
    from devlink.sync.trackers import PROJECT_KEYS_TTL

    use_outside(runtime, "jira", url=dc.url, token=TOKEN)
    assert known_project_keys(runtime) == frozenset({"KAFKA"})
    dc.add_project("NEW", "New")
    assert known_project_keys(runtime) == frozenset({"KAFKA"})
    from datetime import timedelta
    with runtime.sessions.begin() as session:
        session.execute(update(TrackerCacheEntry).values(
            fetched_at=utcnow() - timedelta(seconds=PROJECT_KEYS_TTL + 1)))
    assert known_project_keys(runtime) == frozenset({"KAFKA", "NEW"})


def test_a_bad_token_a_missing_permission_and_an_old_jira_are_named(runtime: Runtime, dc: JiraStub) -> None:
    with pytest.raises(TrackerError) as bad:
        use_outside(runtime, "jira", url=dc.url, token="wrong")
    assert bad.value.reason == "auth" and "refused the token (401)" in bad.value.message
    assert bad.value.hint and "personal access token" in bad.value.hint
    dc.fail_next("GET", r"/myself$", 403)
    assert refused(runtime, url=dc.url).reason == "permission"
    dc.version = "8.5.0"
    old = refused(runtime, url=dc.url)
    assert old.reason == "too_old" and "8.5.0" in old.message and "8.14" in old.message
    assert describe(runtime) == {"kind": "builtin"}  # nothing was kept


def test_the_flags_must_match_the_kind_of_site(runtime: Runtime, dc: JiraStub, cloud: JiraStub) -> None:
    wrong = refused(runtime, url=dc.url, email=BOT)
    assert wrong.reason == "mismatch" and "leave out --email" in (wrong.hint or "")
    wrong = refused(runtime, url=cloud.url)
    assert wrong.reason == "mismatch" and "--email" in (wrong.hint or "")


def test_something_that_is_not_jira_and_nothing_at_all(runtime: Runtime, dc: JiraStub) -> None:
    not_jira = refused(runtime, url=dc.url + "/wiki")
    assert not_jira.reason == "not_jira" and "does not look like a Jira site" in not_jira.message
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = refused(runtime, url=f"http://127.0.0.1:{port}")
    assert unreachable.reason == "network" and f"127.0.0.1:{port}" in unreachable.message
    for bad in ("ftp://jira.example.com", "https://user:pw@jira.example.com", "jira.example.com"):
        with pytest.raises(Exception) as error:
            use_outside(runtime, "jira", url=bad, token=TOKEN)
        assert getattr(error.value, "reason", None) == "bad_url"
        assert "pw" not in str(error.value)


def test_a_redirect_is_not_followed_with_the_token(runtime: Runtime, dc: JiraStub) -> None:
    with JiraStub() as elsewhere:
        dc.fail_next("GET", r"/serverInfo$", 302, headers={"Location": elsewhere.url + "/rest/api/2/serverInfo"})
        moved = refused(runtime, url=dc.url)
        assert moved.reason == "redirect" and elsewhere.url in moved.message
        assert elsewhere.requests == []


def test_a_private_ca_is_named_and_a_ca_bundle_fixes_it(runtime: Runtime, dc: JiraStub, tmp_path: Path) -> None:
    with tls_front(dc.url, tmp_path) as (url, ca):
        untrusted = refused(runtime, url=url)
        assert untrusted.reason == "tls" and "127.0.0.1" in untrusted.message
        assert "--ca-bundle" in (untrusted.hint or "")
        use_outside(runtime, "jira", url=url, token=TOKEN, ca_bundle=str(ca))
        assert describe(runtime)["ca_bundle"] == str(ca)


def test_switching_back_to_the_builtin_tracker_deletes_the_credential(runtime: Runtime, dc: JiraStub) -> None:
    use_outside(runtime, "jira", url=dc.url, token=TOKEN)
    change = use_builtin(runtime)
    assert describe(runtime) == {"kind": "builtin"}
    assert any("credential is deleted" in note for note in change.notes)
    with runtime.sessions() as session:
        assert session.scalar(select(TrackerConnection.id)) is None


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(tmp_path / "home", monkeypatch, capsys)


def test_the_cli_takes_the_token_on_stdin_and_never_prints_it(cli: InProcessCli, dc: JiraStub) -> None:
    on_argv = cli("tracker", "use", "jira", "--url", dc.url, "--token", TOKEN)
    assert on_argv.code == 1 and "standard input" in on_argv.stderr and TOKEN not in on_argv.stderr
    used = cli("tracker", "use", "jira", "--url", dc.url, "--token", "-", input=TOKEN + "\n")
    assert used.code == 0, used.stderr
    assert "Jira Data Center / Server" in used.stdout and "devlink sync --full" in used.stdout
    shown = cli("tracker", "show")
    assert shown.code == 0 and dc.url in shown.stdout and "acts as: bot" in shown.stdout
    as_json = json.loads(cli("tracker", "show", "--json").stdout)
    assert as_json["deployment"] == "datacenter"
    for ran in (used, shown):
        assert TOKEN not in ran.stdout + ran.stderr
    wrong = cli("tracker", "use", "jira", "--url", dc.url, "--token", "-", input="nope\n")
    assert wrong.code == 1 and "refused the token" in wrong.stderr
    assert cli("tracker", "use", "builtin").code == 0
    assert json.loads(cli("tracker", "show", "--json").stdout) == {"kind": "builtin"}
    for name in (p for p in (cli.home).rglob("*") if p.is_file()):
        assert TOKEN.encode() not in name.read_bytes(), name


def test_a_webhook_being_answered_never_waits_for_jira(runtime: Runtime, dc: JiraStub) -> None:
    from datetime import timedelta

    from sqlalchemy import delete, update

    from devlink.store.models import utcnow
    from devlink.store.tracker import TrackerCacheEntry

    use_outside(runtime, "jira", url=dc.url, token=TOKEN)
    with runtime.sessions.begin() as session:
        session.execute(delete(TrackerCacheEntry))
    asked = len(dc.requests)
    assert known_project_keys(runtime, ask=False) == frozenset()  # nothing known yet: nothing links yet
    assert known_project_keys(runtime) == frozenset({"KAFKA"})
    with runtime.sessions.begin() as session:
        session.execute(update(TrackerCacheEntry).values(fetched_at=utcnow() - timedelta(days=1)))
    dc.add_project("NEW", "New")
    assert known_project_keys(runtime, ask=False) == frozenset({"KAFKA"})  # old keys, and Jira is not asked
    assert len(dc.requests) == asked + 1


def test_a_proxy_is_checked_without_echoing_its_password_and_kept_encrypted(runtime: Runtime, dc: JiraStub) -> None:
    for bad in ("proxyuser:S3cretPw@127.0.0.1:3128", "socks5://u:S3cretPw@127.0.0.1:1080", "notaurl"):
        with pytest.raises(Exception) as refused:
            use_outside(runtime, "jira", url=dc.url, token=TOKEN, proxy=bad)
        assert getattr(refused.value, "reason", None) == "bad_url", refused.value
        assert "S3cretPw" not in str(refused.value) + str(getattr(refused.value, "hint", ""))
    with pytest.raises(TrackerError):  # a well-formed proxy that is not there: the site cannot be reached
        use_outside(runtime, "jira", url=dc.url, token=TOKEN, proxy="http://u:S3cretPw@127.0.0.1:9")


def test_an_alias_must_name_a_jira_user(runtime: Runtime, dc: JiraStub) -> None:
    from devlink.errors import NotFound
    from devlink.sync.trackers import add_outside_alias

    use_outside(runtime, "jira", url=dc.url, token=TOKEN)
    with pytest.raises(NotFound) as ghost:
        add_outside_alias(runtime, "x@example.com", "ghost")
    assert "no user 'ghost'" in ghost.value.message
    assert add_outside_alias(runtime, "Bot@Example.com", "bot") == {"email": "bot@example.com", "user": "bot",
                                                                    "name": "devlink bot"}


def test_the_cli_names_jira_when_keys_of_unknown_projects_were_not_linked(
    cli: InProcessCli, dc: JiraStub, bare_remote: tuple
) -> None:
    repo, server = bare_remote
    repo.commit("KAFKA-1 and FOO-7")
    repo.git("push", "-q", "origin", "main")
    assert cli("tracker", "use", "jira", "--url", dc.url, "--token", "-", input=TOKEN + "\n").code == 0
    added = cli("repo", "add", str(server))
    assert added.code == 0, added.stderr
    assert "create it in Jira" in added.stdout and "devlink tracker project" not in added.stdout
    assert "development data sent to the tracker" in added.stdout
    listed = cli("repo", "list")
    assert "tracker" in listed.stdout and "sent" in listed.stdout
    dc.fail_next("POST", r"/remotelink$", 403, times=10)
    repo.commit("KAFKA-1 again")
    repo.git("push", "-q", "origin", "main")
    synced = cli("sync", server.name.removesuffix(".git"), "--full", "--wait")
    assert "development data not sent to the tracker (failed)" in synced.stdout, synced.stdout + synced.stderr
    assert "tracker: " in cli("repo", "list").stdout
    refused = cli("tracker", "project", "FOO", "Foo")
    assert refused.code == 1 and "Jira is the tracker in use" in refused.stderr
