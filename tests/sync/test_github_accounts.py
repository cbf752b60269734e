"""Linking GitHub accounts against the stub: verification, discovery, webhooks, renames, gone repositories."""

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from devlink.errors import Conflict
from devlink.hosts import for_kind
from devlink.hosts.base import HostError
from devlink.runtime import Runtime
from devlink.store.models import Account, Repository
from devlink.sync.accounts import AccountOptions, discover, link_account, link_repositories, unlink_repository
from devlink.sync.host_clients import load_options
from devlink.sync.jobs import run_sync
from github_world import TOKEN, GitHubWorld

GITHUB = for_kind("github")


def options(github: GitHubWorld, name: str = "octo", **extra: object) -> AccountOptions:
    return AccountOptions(name=name, web_url=github.stub.web_url, token=TOKEN, **extra)  # type: ignore[arg-type]


def repositories(runtime: Runtime) -> dict[str, Repository]:
    with runtime.sessions() as session:
        return {r.name: r for r in session.scalars(select(Repository))}


def test_link_discovers_every_repository_and_installs_a_webhook_on_the_linked_one(
    runtime: Runtime, github: GitHubWorld
) -> None:
    github.repo("octo", "api")
    github.repo("octo", "web", private=True)
    github.repo("octo", "old", archived=True)
    _account_id, found = link_account(runtime, options(github, link=["api"]))
    assert found.found == 3
    assert sorted(found.new) == ["octo/api", "octo/old", "octo/web"]
    rows = repositories(runtime)
    assert {name: r.linked for name, r in rows.items()} == {"octo/api": True, "octo/web": False, "octo/old": False}
    assert rows["octo/web"].private and rows["octo/old"].archived
    [hook] = github.stub.hooks("octo", "api")
    assert hook["config"]["url"] == f"{runtime.settings.public_url}/hooks/github"
    assert hook["config"]["content_type"] == "json"
    assert set(hook["events"]) == {"push", "create", "delete", "pull_request", "pull_request_review", "repository"}
    assert rows["octo/api"].webhook_state == "installed"
    assert runtime.vault.decrypt(rows["octo/api"].webhook_secret or "") == hook["config"]["secret"]
    assert github.stub.hooks("octo", "web") == []


def test_link_all_skips_archived_and_auto_link_takes_new_repositories(runtime: Runtime, github: GitHubWorld) -> None:
    github.repo("octo", "api")
    github.repo("octo", "old", archived=True)
    account_id, _found = link_account(runtime, options(github, link="all", auto_link=True))
    assert {n: r.linked for n, r in repositories(runtime).items()} == {"octo/api": True, "octo/old": False}
    github.repo("octo", "new")
    again = discover(runtime, account_id)
    assert again.new == ["octo/new"] and len(again.linked) == 1
    assert repositories(runtime)["octo/new"].linked
    assert len(github.stub.hooks("octo", "new")) == 1


def test_secrets_are_stored_encrypted_and_never_in_mirror_config(
    runtime: Runtime, github: GitHubWorld, tmp_path: Path
) -> None:
    github.repo("octo", "api")
    _account_id, found = link_account(runtime, options(github, link="all"))
    [result] = run_sync(runtime, found.linked[0], full=True)
    assert result.commits_new == 1
    with runtime.engine.connect() as connection:
        dump = "\n".join(str(row) for table in ("accounts", "repositories", "hosts")
                         for row in connection.execute(text(f"SELECT * FROM {table}")))
    assert TOKEN not in dump
    hook_secret = github.stub.hooks("octo", "api")[0]["config"]["secret"]
    assert hook_secret not in dump
    for path in runtime.settings.home.rglob("*"):
        if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm"):
            assert TOKEN.encode() not in path.read_bytes(), path


def test_wrong_token_unknown_account_and_double_link_fail_clearly(runtime: Runtime, github: GitHubWorld) -> None:
    with pytest.raises(HostError) as bad:
        link_account(runtime, AccountOptions(name="octo", web_url=github.stub.web_url, token="ghp_wrong"))
    assert bad.value.reason == "auth" and "refused the credential" in bad.value.message
    with pytest.raises(HostError) as missing:
        link_account(runtime, options(github, name="nobody"))
    assert missing.value.reason == "not_found" and "nobody" in missing.value.message
    with runtime.sessions() as session:
        assert session.scalars(select(Account)).all() == []  # nothing stored on failure
    link_account(runtime, options(github))
    with pytest.raises(Conflict, match="already linked"):
        link_account(runtime, options(github))


def test_unreachable_host_names_the_host(runtime: Runtime) -> None:
    from servers import free_port

    port = free_port()
    with pytest.raises(HostError) as failure:
        link_account(runtime, AccountOptions(name="octo", web_url=f"http://127.0.0.1:{port}", token=TOKEN))
    assert failure.value.reason == "network"
    assert f"127.0.0.1:{port}" in failure.value.message


def test_rename_and_transfer_keep_the_data_and_deleted_repositories_are_marked_gone(
    runtime: Runtime, github: GitHubWorld
) -> None:
    github.stub.add_org("acme", members=["octo"])
    github.repo("octo", "api")
    github.repo("octo", "doomed")
    account_id, _found = link_account(runtime, options(github, link="all"))
    api_id = repositories(runtime)["octo/api"].id
    run_sync(runtime, api_id, full=True)
    github.stub.rename_repo("octo", "api", "service")
    github.stub.delete_repo("octo", "doomed")
    again = discover(runtime, account_id)
    assert again.renamed == [("octo/api", "octo/service")]
    assert again.gone == ["octo/doomed"]
    rows = repositories(runtime)
    assert rows["octo/service"].id == api_id and rows["octo/service"].commits_indexed == 1
    assert rows["octo/doomed"].state == "gone"


def test_without_hook_rights_the_repository_still_syncs_and_says_why(runtime: Runtime, github: GitHubWorld) -> None:
    github.repo("octo", "api")
    github.stub.deny_hooks("octo", "api")
    _account_id, _found = link_account(runtime, options(github, link="all"))
    row = repositories(runtime)["octo/api"]
    assert row.webhook_state == "unavailable"
    assert "cannot manage webhooks" in (row.webhook_error or "") and "every 60 min" in (row.webhook_error or "")
    [result] = run_sync(runtime, row.id, full=True)
    assert result.commits_new == 1


def test_discovery_repairs_missing_hooks_and_removes_stale_duplicates(runtime: Runtime, github: GitHubWorld) -> None:
    github.repo("octo", "api")
    account_id, _ = link_account(runtime, options(github, link="all"))
    hook = github.stub.hooks("octo", "api")[0]
    auth = {"Authorization": f"token {TOKEN}"}
    httpx.delete(f"{github.stub.api_url}/repos/octo/api/hooks/{hook['id']}", headers=auth)  # removed on GitHub
    assert github.stub.hooks("octo", "api") == []
    discover(runtime, account_id)
    [repaired] = github.stub.hooks("octo", "api")
    assert repaired["id"] != hook["id"]
    # changed on GitHub (events cut, form encoding): discovery puts it right, in place
    httpx.patch(f"{github.stub.api_url}/repos/octo/api/hooks/{repaired['id']}", headers=auth,
                json={"events": ["push"], "config": {"url": repaired["config"]["url"], "content_type": "form"}})
    discover(runtime, account_id)
    [fixed] = github.stub.hooks("octo", "api")
    assert fixed["id"] == repaired["id"] and fixed["config"]["content_type"] == "json" and len(fixed["events"]) == 6
    # devlink lost track of its hook (restored backup): it adopts the one at its URL and sets a secret it knows
    with runtime.sessions.begin() as session:
        row = session.scalars(select(Repository)).one()
        row.webhook_id, row.webhook_secret = None, None
    discover(runtime, account_id)
    [adopted] = github.stub.hooks("octo", "api")
    assert adopted["id"] == repaired["id"]
    assert runtime.vault.decrypt(repositories(runtime)["octo/api"].webhook_secret or "") == adopted["config"]["secret"]


def test_unlinking_removes_the_webhook(runtime: Runtime, github: GitHubWorld) -> None:
    github.repo("octo", "api")
    account_id, found = link_account(runtime, options(github, link="all"))
    assert len(github.stub.hooks("octo", "api")) == 1
    link_repositories(runtime, account_id, ["api"], linked=False)
    assert github.stub.hooks("octo", "api") == []
    assert not repositories(runtime)["octo/api"].linked
    unlink_repository(runtime, found.linked[0])  # twice is fine
    assert github.stub.hooks("octo", "api") == []


def test_repo_remove_takes_the_webhook_away_and_discovery_brings_the_repository_back_unlinked(
    runtime: Runtime, github: GitHubWorld
) -> None:
    from devlink.sync.repositories import remove_repository

    github.repo("octo", "api")
    account_id, _ = link_account(runtime, options(github, link="all"))
    assert remove_repository(runtime, "octo/api") == "octo/api"
    assert github.stub.hooks("octo", "api") == []
    assert repositories(runtime) == {}
    assert discover(runtime, account_id).new == ["octo/api"]
    assert not repositories(runtime)["octo/api"].linked


def test_daily_discovery_is_claimed_once_per_interval(runtime: Runtime, github: GitHubWorld) -> None:
    from devlink.sync.accounts import discover_due

    github.repo("octo", "api")
    account_id, _ = link_account(runtime, options(github))
    assert discover_due(runtime, lambda _: None) == []  # linking just discovered: next run in a day
    with runtime.sessions.begin() as session:
        session.get(Account, account_id).next_discovery_at = None  # type: ignore[union-attr]
    queued: list[int] = []
    assert discover_due(runtime, queued.append) == [account_id] and queued == [account_id]
    assert discover_due(runtime, queued.append) == []  # a second scheduler finds it claimed


class Recorder:
    """A dispatcher that remembers what it was asked, as the queue would receive it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def request_sync(self, repository_id: int, *, full: bool, trigger: str) -> str:
        self.calls.append((f"sync:{trigger}", repository_id))
        return "queued"

    def refresh_pull(self, repository_id: int, number: int) -> None:
        self.calls.append(("pull", number))

    def discover(self, account_id: int) -> None:
        self.calls.append(("discover", account_id))


def test_a_delivery_answered_but_never_processed_is_acted_on_by_the_sweep(
    runtime: Runtime, github: GitHubWorld
) -> None:
    from datetime import timedelta

    from devlink.store.models import WebhookDelivery, utcnow
    from devlink.sync.webhooks import incoming, receive, redeliver_pending

    github.repo("octo", "api")
    _, found = link_account(runtime, options(github, link="all"))
    repo = github.stub.repo("octo", "api")
    body = (
        '{"ref": "refs/heads/main", "before": "' + "0" * 40 + '", "after": "' + "1" * 40 + '", "commits": [],'
        ' "repository": {"id": ' + str(repo["id"]) + ', "full_name": "octo/api", "owner": {"login": "octo"}}}'
    ).encode()
    first = Recorder()
    headers = github.stub.delivery_headers("push", body, owner="octo", repo="api", delivery="d-1")
    answer = receive(runtime, first, incoming(runtime, GITHUB, headers, {}), body)
    assert answer["status"] == "queued" and first.calls == [("sync:hook", found.linked[0])]
    # the process died after recording d-2 and before queueing its work
    with runtime.sessions.begin() as session:
        session.add(WebhookDelivery(host_kind="github", delivery_id="d-2", repository_id=found.linked[0],
                                    event="push", payload=body.decode(), received_at=utcnow() - timedelta(minutes=5)))
    sweep = Recorder()
    assert redeliver_pending(runtime, sweep) == 1
    assert sweep.calls == [("sync:hook", found.linked[0])]
    assert redeliver_pending(runtime, Recorder()) == 0  # processed now


def test_a_github_app_account_uses_the_apps_own_webhook(runtime: Runtime, github: GitHubWorld) -> None:
    """With the App's webhook secret set on the host, no hook per repository; deliveries carry the installation."""
    from devlink.sync.accounts import configure_host
    from devlink.sync.webhooks import Unauthorized, incoming, receive

    github.stub.add_org("acme", members=["octo"])
    github.repo("acme", "api")
    pem = github.stub.add_app(4242, webhook_secret="app-secret")
    installation = github.stub.add_installation(4242, "acme")
    configure_host(runtime, AccountOptions(name="", web_url=github.stub.web_url),
                   host_options={"app_webhook_secret": "app-secret"})
    link_account(runtime, AccountOptions(name="acme", web_url=github.stub.web_url,
                                         options={"app_id": "4242", "app_private_key": pem}, link="all"))
    row = repositories(runtime)["acme/api"]
    assert (row.webhook_state, github.stub.hooks("acme", "api")) == ("app", [])
    [result] = run_sync(runtime, row.id, full=True)  # git over the installation token
    assert result.commits_new == 1
    body = (
        '{"ref": "refs/heads/main", "before": "' + "0" * 40 + '", "after": "' + "1" * 40 + '", "commits": [],'
        ' "installation": {"id": ' + str(installation) + '},'
        ' "repository": {"id": ' + str(row.external_id) + ', "full_name": "acme/api", "owner": {"login": "acme"}}}'
    ).encode()
    calls: list[int] = []

    class Queue:
        def request_sync(self, repository_id: int, *, full: bool, trigger: str) -> str:
            calls.append(repository_id)
            return "queued"

        def refresh_pull(self, repository_id: int, number: int) -> None: ...

        def discover(self, account_id: int) -> None: ...

    headers = github.stub.delivery_headers("push", body, owner="acme", app_id=4242)
    answer = receive(runtime, Queue(), incoming(runtime, GITHUB, headers, {}), body)
    assert (answer["status"], calls) == ("queued", [row.id])
    github.stub.add_app(4242, webhook_secret="not-the-app-secret")
    headers = github.stub.delivery_headers("push", body, owner="acme", app_id=4242)
    with pytest.raises(Unauthorized):
        receive(runtime, Queue(), incoming(runtime, GITHUB, headers, {}), body)


def test_a_pull_request_title_with_nul_or_a_lone_surrogate_is_stored_not_refused(
    runtime: Runtime, github: GitHubWorld
) -> None:
    import json

    from devlink.store import queries
    from devlink.sync.webhooks import incoming, receive

    github.repo("octo", "api")
    link_account(runtime, options(github, link="all"))
    repo = github.stub.repo("octo", "api")
    pull = {"id": 9, "number": 9, "title": "ABC-9 nul \u0000 and \ud800 here", "state": "open",
            "head": {"ref": "feature"}, "base": {"ref": "main"}, "user": {"login": "ada"},
            "updated_at": "2026-11-23T12:00:00Z"}
    body = json.dumps({"action": "opened", "pull_request": pull, "repository": {
        "id": repo["id"], "full_name": "octo/api", "owner": {"login": "octo"}}}).encode()
    headers = github.stub.delivery_headers("pull_request", body, owner="octo", repo="api")
    answer = receive(runtime, Recorder(), incoming(runtime, GITHUB, headers, {}), body)
    assert answer["status"] == "updated"
    with runtime.sessions() as session:
        [stored] = queries.development(session, "ABC-9")["pull_requests"]
    assert stored["title"] == "ABC-9 nul \ufffd and \ufffd here"


# -- a host's settings are the admin's: linking never changes them ----------------------------

MALLORY = "ghp_" + "m4ll0ry0" * 4 + "evil"


def host_row(runtime: Runtime) -> dict[str, object]:
    from devlink.store.models import Host

    with runtime.sessions() as session:
        host = session.scalars(select(Host).where(Host.api_url.is_not(None))).one()
        return {"api_url": host.api_url, "ca_bundle": host.ca_bundle, "proxy": host.proxy, "timeout": host.timeout}


@pytest.mark.parametrize("setting", ["api_url", "proxy", "ca_bundle", "timeout"])
def test_linking_another_account_never_rewrites_the_shared_host(
    runtime: Runtime, github: GitHubWorld, tmp_path: Path, setting: str
) -> None:
    """The attack: link an account of one's own on the victim's host, with a host setting of one's own choosing;
    the victim's next discovery must not send its token anywhere new."""
    from github_stub import GitHubStub

    github.repo("octo", "api")
    victim_id, _ = link_account(runtime, options(github, link="all"))
    before = host_row(runtime)
    with GitHubStub() as attacker:  # a GitHub of the attacker's, on another loopback port, recording everything
        attacker.add_user("mallory")
        attacker.add_token(MALLORY, "mallory")
        chosen = {"api_url": attacker.api_url, "proxy": attacker.web_url, "ca_bundle": str(tmp_path / "their-ca.pem"),
                  "timeout": 0.5}[setting]
        with pytest.raises(Conflict) as refused:
            link_account(runtime, AccountOptions(name="mallory", web_url=github.stub.web_url, token=MALLORY,
                                                 **{setting: chosen}))  # type: ignore[arg-type]
        assert refused.value.reason == "host_settings" and refused.value.status == 409
        assert setting in refused.value.message and "never changes a host's settings" in refused.value.message
        assert "devlink host set" in (refused.value.hint or "")
        assert host_row(runtime) == before
        discover(runtime, victim_id)
        assert not [r for r in attacker.requests if TOKEN in r.headers.get("authorization", "")]
        assert attacker.requests == []
    with runtime.sessions() as session:
        assert [a.name for a in session.scalars(select(Account))] == ["octo"]


def test_linking_with_the_hosts_own_settings_or_none_works_and_a_new_host_takes_them(
    runtime: Runtime, github: GitHubWorld
) -> None:
    github.stub.add_org("acme", members=["octo"])
    # over the web, linking never sets a new host's connection settings: nothing is stored
    with pytest.raises(Conflict) as refused:
        link_account(runtime, options(github, api_url=github.stub.api_url + "/", timeout=12.5))
    assert refused.value.reason == "host_settings" and "devlink host set" in (refused.value.hint or "")
    with runtime.sessions() as session:
        assert session.scalar(select(Account.id)) is None and session.scalar(text("SELECT count(*) FROM hosts")) == 0
    # the operator's CLI may set up a new host as it links the first account
    link_account(runtime, options(github, api_url=github.stub.api_url + "/", timeout=12.5, may_set_up_host=True))
    assert host_row(runtime)["timeout"] == 12.5 and host_row(runtime)["api_url"] == github.stub.api_url
    link_account(runtime, options(github, name="acme", api_url=github.stub.api_url, timeout=12.5))  # the same: fine
    with runtime.sessions() as session:
        origins = {a.name: a.api_origin for a in session.scalars(select(Account))}
    assert origins == {"octo": github.stub.web_url, "acme": github.stub.web_url}  # scheme://host:port of the API


def test_a_credential_is_sent_only_to_the_api_origin_it_was_linked_for(runtime: Runtime, github: GitHubWorld) -> None:
    from devlink.store.models import Host
    from devlink.sync.accounts import configure_host
    from github_stub import GitHubStub

    github.repo("octo", "api")
    account_id, found = link_account(runtime, options(github, link="all"))
    with GitHubStub() as elsewhere:
        with runtime.sessions.begin() as session:  # changed behind devlink's back: a restored backup, manual SQL
            session.scalars(select(Host).where(Host.api_url.is_not(None))).one().api_url = elsewhere.api_url
        with pytest.raises(HostError) as refused:
            discover(runtime, account_id)
        assert refused.value.reason == "auth" and "does not send it there" in refused.value.message
        assert github.stub.web_url in refused.value.message and "devlink host set" in (refused.value.hint or "")
        assert run_sync(runtime, found.linked[0], full=True) == []  # git needs the token too: refused the same way
        assert elsewhere.requests == []
    with runtime.sessions() as session:
        assert session.get(Repository, found.linked[0]).last_error_reason == "auth"  # type: ignore[union-attr]

    # the admin's way: a new API address, chosen with host set, re-pins the host's accounts and says so
    moved = f"http://localhost:{github.stub.port}/api/v3"
    view = configure_host(runtime, AccountOptions(name="", web_url=github.stub.web_url, api_url=moved))
    assert view["repinned"] == ["octo"] and view["api_url"] == moved
    mark = len(github.stub.requests)
    discover(runtime, account_id)
    assert {r.headers["host"] for r in github.stub.requests[mark:]} == {f"localhost:{github.stub.port}"}
    assert configure_host(runtime, AccountOptions(name="", web_url=github.stub.web_url))["repinned"] == []


def test_an_app_account_never_replaces_the_hosts_github_app(runtime: Runtime, github: GitHubWorld) -> None:
    from devlink.store.models import Host

    github.stub.add_org("acme", members=["octo"])
    github.stub.add_org("evilcorp")
    pem = github.stub.add_app(4301)
    github.stub.add_installation(4301, "acme")
    other = github.stub.add_app(4302)
    github.stub.add_installation(4302, "evilcorp")
    link_account(runtime, AccountOptions(name="acme", web_url=github.stub.web_url,
                                         options={"app_id": "4301", "app_private_key": pem}))
    with pytest.raises(Conflict) as refused:
        link_account(runtime, AccountOptions(name="evilcorp", web_url=github.stub.web_url,
                                             options={"app_id": "4302", "app_private_key": other}))
    assert "app_id, app_private_key" in refused.value.message
    with runtime.sessions() as session:
        host = session.scalars(select(Host).where(Host.api_url.is_not(None))).one()
        kept = load_options(host.options, runtime.vault, frozenset({"app_private_key"}))
        assert (kept["app_id"], kept["app_private_key"]) == ("4301", pem)


# -- lookups are exact ---------------------------------------------------------------------


def test_account_lookups_are_exact_and_ids_are_ascii_digits_within_64_bits(
    runtime: Runtime, github: GitHubWorld
) -> None:
    from devlink.errors import NotFound
    from devlink.sync.accounts import find_account

    github.stub.add_org("acme", members=["octo"])
    acme_id, _ = link_account(runtime, options(github, name="acme"))
    octo_id, _ = link_account(runtime, options(github))
    with runtime.sessions() as session:
        for ref in ("a%", "a___", "%", "_cme", "ac%e", "\u0661", "\u0662", "\u00b9", "\u00b2", str(2**63),
                    "9" * 40, "", " acme"):
            with pytest.raises(NotFound):
                find_account(session, ref)
        assert find_account(session, "ACME").id == acme_id  # GitHub logins ignore case
        assert find_account(session, f"{github.stub.web_url.split('//')[1]}/Octo").id == octo_id
        assert find_account(session, str(octo_id)).id == octo_id
    with pytest.raises(Conflict):
        link_account(runtime, options(github, name="OCTO"))  # the duplicate check ignores case, exactly


def test_repository_lookups_never_take_unicode_digits_or_huge_numbers_as_ids(
    runtime: Runtime, github: GitHubWorld
) -> None:
    from devlink.errors import NotFound
    from devlink.sync.repositories import find_repository

    github.repo("octo", "api")
    github.repo("octo", "web")
    link_account(runtime, options(github, link="all"))
    with runtime.sessions() as session:
        ids = sorted(r.id for r in session.scalars(select(Repository)))
        for ref in ("\u0661", "\u0662", "\u00b9", "\u00b3", str(2**63), "1" * 30, "octo/%", "octo/ap_"):
            with pytest.raises(NotFound):
                find_repository(session, ref)
        with pytest.raises(NotFound):
            find_repository(session, 2**70)  # as an int too (a path parameter)
        assert find_repository(session, str(ids[0])).id == ids[0]
        assert find_repository(session, ids[1]).id == ids[1]
        assert find_repository(session, "octo/web").name == "octo/web"


@pytest.mark.parametrize("proxy", ["socks5://proxy.example:1080", "proxy.example:3128", "http://robot:pr0xy-pw@proxy.example:3128",
                                   "http://proxy.example:port"])
def test_a_proxy_must_be_a_plain_http_url(runtime: Runtime, proxy: str) -> None:
    """Both the API client and git take the host's proxy; a password in it would be stored and shown in the clear."""
    from devlink.errors import InvalidInput
    from devlink.sync.accounts import configure_host

    with pytest.raises(InvalidInput) as refused:
        configure_host(runtime, AccountOptions(name="", web_url="https://ghe.example.com", proxy=proxy))
    assert refused.value.reason == "bad_url"
    assert "pr0xy-pw" not in refused.value.message
    view = configure_host(runtime, AccountOptions(name="", web_url="https://ghe.example.com",
                                                  proxy="http://proxy.example:3128/"))
    assert view["proxy"] == "http://proxy.example:3128"


def test_github_coms_api_cannot_be_moved(runtime: Runtime) -> None:
    """Whoever links first on github.com must not choose where every later github.com token goes."""
    from devlink.errors import InvalidInput
    from devlink.sync.accounts import configure_host

    for may_set_up_host in (False, True):
        with pytest.raises((Conflict, InvalidInput)):
            link_account(runtime, AccountOptions(name="octo", web_url="https://github.com", token=TOKEN,
                                                 api_url="http://127.0.0.1:9/api/v3", may_set_up_host=may_set_up_host))
    with pytest.raises(InvalidInput) as refused:
        configure_host(runtime, AccountOptions(name="", web_url="https://github.com", api_url="https://evil.example"))
    assert refused.value.reason == "bad_url"
    view = configure_host(runtime, AccountOptions(name="", web_url="https://github.com", api_url=""))
    assert view["api_url"] == "https://api.github.com"


def test_a_replayed_repository_deleted_delivery_asks_github_and_loses_nothing(
    runtime: Runtime, github: GitHubWorld
) -> None:
    """A signed body stays valid for ever; replayed with a fresh delivery id it must not mark a live repository
    gone (or roll back its name): devlink asks GitHub instead, and a real deletion is still followed."""
    import json

    from devlink.sync.webhooks import incoming, receive

    github.repo("octo", "api")
    account_id, found = link_account(runtime, options(github, link="all"))
    repo = github.stub.repo("octo", "api")
    body = json.dumps({"action": "deleted", "repository": {
        "id": repo["id"], "name": "api", "full_name": "octo/api", "owner": {"login": "octo"},
        "html_url": f"{github.stub.web_url}/octo/api", "clone_url": repo["clone_url"]}}).encode()
    for delivery in ("replay-1", "replay-2"):  # the original, then the same body under a fresh id
        queue = Recorder()
        headers = github.stub.delivery_headers("repository", body, owner="octo", repo="api", delivery=delivery)
        answer = receive(runtime, queue, incoming(runtime, GITHUB, headers, {}), body)
        assert (answer["status"], queue.calls) == ("discovering", [("discover", account_id)])
        discover(runtime, account_id)  # what the queued job runs
        assert repositories(runtime)["octo/api"].state == "active"
    github.stub.delete_repo("octo", "api")  # now it really is gone: discovery says so
    discover(runtime, account_id)
    assert repositories(runtime)["octo/api"].state == "gone"
    assert found.linked == [repositories(runtime)["octo/api"].id]


def test_an_organisation_delivery_left_unprocessed_by_a_crash_still_discovers(
    runtime: Runtime, github: GitHubWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``repository.created`` names no linked repository: the sweep must still know whose discovery to run."""
    import json
    from datetime import timedelta

    import devlink.sync.webhooks as webhooks
    from devlink.store.models import WebhookDelivery, utcnow

    github.stub.add_org("acme", members=["octo"])
    github.stub.add_token(TOKEN, "octo", "repo, admin:repo_hook, admin:org_hook, read:org")
    github.repo("acme", "api")
    account_id, _ = link_account(runtime, options(github, name="acme", link="all"))
    assert github.stub.org_hooks("acme"), "no organisation hook: nothing to test"
    org = github.stub.accounts["acme"]
    body = json.dumps({"action": "created", "organization": {"id": org["id"], "login": "acme"}, "repository": {
        "id": 987654, "name": "new", "full_name": "acme/new", "owner": {"login": "acme"}}}).encode()
    headers = github.stub.delivery_headers("repository", body, owner="acme", delivery="crash-1")

    class Crash(Exception):
        pass

    def crash(*args: object) -> str:
        raise Crash("the process died after answering, before queueing")

    with monkeypatch.context() as patched:
        patched.setattr(webhooks, "_act", crash)
        with pytest.raises(Crash):
            webhooks.receive(runtime, Recorder(), webhooks.incoming(runtime, GITHUB, headers, {}), body)
    with runtime.sessions.begin() as session:
        session.query(WebhookDelivery).filter(WebhookDelivery.delivery_id == "crash-1").update(
            {"received_at": utcnow() - timedelta(minutes=5)})
    sweep = Recorder()
    assert webhooks.redeliver_pending(runtime, sweep) == 1
    assert sweep.calls == [("discover", account_id)]


def test_an_unlinked_repositorys_old_hook_is_refused_whatever_hook_id_it_names(
    runtime: Runtime, github: GitHubWorld
) -> None:
    """Unlinking deletes the hook; when GitHub refuses the delete, what the hook still sends must not verify."""
    import json

    from devlink.sync.webhooks import Unauthorized, incoming, receive

    github.repo("octo", "api")
    link_account(runtime, options(github, link="all"))
    row = repositories(runtime)["octo/api"]
    [hook] = github.stub.hooks("octo", "api")
    github.stub.fail_next("DELETE", f"/hooks/{hook['id']}", 403, times=5)  # the delete is refused: it stays
    unlink_repository(runtime, row.id)
    assert github.stub.hooks("octo", "api"), "the hook was deleted: nothing to test"
    repo = github.stub.repo("octo", "api")
    body = json.dumps({"action": "renamed", "repository": {
        "id": repo["id"], "name": "api", "full_name": "octo/api", "owner": {"login": "octo"},
        "clone_url": "http://evil.example/octo/api.git"}}).encode()
    for hook_id in (str(hook["id"]), "123456"):
        headers = dict(github.stub.delivery_headers("repository", body, owner="octo", repo="api"),
                       **{"X-GitHub-Hook-ID": hook_id})
        with pytest.raises(Unauthorized):
            receive(runtime, Recorder(), incoming(runtime, GITHUB, headers, {}), body)
    after = repositories(runtime)["octo/api"]
    assert (after.linked, after.url, after.webhook_secret) == (False, row.url, None)
