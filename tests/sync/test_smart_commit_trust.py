"""Smart-commit trust policies on real parts: a GitHub stub with real git over HTTP and signed webhook deliveries
received by ``sync/webhooks.py`` (``pusher``), real SSH keys and signed commits verified by git (``signed``), SQLite.

Each test checks both the ledger (what was refused, and why) and the tracker (nothing happened for a refusal).
"""

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from devlink.errors import Conflict, InvalidInput, NotFound
from devlink.hosts import for_kind
from devlink.runtime import Runtime
from devlink.store.models import Account, Repository
from devlink.store.people import CommitPush
from devlink.store.tracker import SmartCommitRun
from devlink.sync.accounts import AccountOptions, link_account
from devlink.sync.identities import (
    add_identity,
    add_signing_key,
    list_identities,
    list_signing_keys,
    remove_identity,
    remove_signing_key,
    set_account_trust,
    set_repository_trust,
)
from devlink.sync.jobs import run_sync
from devlink.sync.repositories import add_repository
from devlink.sync.webhooks import incoming, receive
from devlink.trackers.builtin import MAX_ISSUE_PAGE_SIZE, import_data, issue_view
from github_world import TOKEN, GitHubWorld
from gitrepos import GitRepo

pytestmark = pytest.mark.timeout(120)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "github-webhooks"
GITHUB = for_kind("github")
ALICE = "Alice <alice@example.com>"
TRACKER = {
    "users": [
        {"username": "alice", "name": "Alice", "emails": ["alice@example.com"]},
        {"username": "bob", "name": "Bob", "emails": ["bob@example.com"]},
        {"username": "mallory", "name": "Mallory", "emails": ["mallory@example.com"]},
    ],
    "projects": [{"key": "API", "name": "API", "permissions": {
        "browse": ["everyone"], "comment": ["everyone"], "log_work": ["everyone"], "transition": ["everyone"]}}],
    "issues": [{"key": "API-1", "summary": "first"}],
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:  # SQLite only: these tests are about policies, not engines
    return f"sqlite:///{tmp_path / 'devlink.db'}"


@pytest.fixture
def tracked(runtime: Runtime) -> Runtime:
    with runtime.sessions.begin() as session:
        import_data(session, TRACKER)
    return runtime


def comments(rt: Runtime) -> list[tuple[str, str]]:
    with rt.sessions() as session:
        view = issue_view(session, "API-1", limit=MAX_ISSUE_PAGE_SIZE)
    return [(c["author"], c["body"]) for c in view["comments"]]  # type: ignore[index]


def ledger(rt: Runtime) -> list[tuple[str, str, str]]:
    with rt.sessions() as session:
        rows = session.execute(select(SmartCommitRun.commit_sha, SmartCommitRun.outcome, SmartCommitRun.message)
                               .order_by(SmartCommitRun.id)).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


class Recorder:
    """The queue as ``receive`` sees it: the test runs the requested sync itself, in-process."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def request_sync(self, repository_id: int, *, full: bool, trigger: str) -> str:
        self.calls.append(repository_id)
        return "queued"

    def refresh_pull(self, repository_id: int, number: int) -> None: ...

    def discover(self, account_id: int) -> None: ...


# --------------------------------------------------------------------------- pusher, with GitHub webhooks


@pytest.fixture
def hosted(tracked: Runtime, github: GitHubWorld) -> tuple[GitHubWorld, GitRepo, int]:
    """octo/api linked through an account and backfilled, with the ``pusher`` policy set on the repository."""
    work = github.repo("octo", "api")
    work._clock = int(time.time()) - 600  # smart commits only act on recent commits
    _, found = link_account(tracked, AccountOptions(name="octo", web_url=github.stub.web_url, token=TOKEN,
                                                    link=["api"]))
    [repository_id] = found.linked
    run_sync(tracked, repository_id, full=False)
    assert set_repository_trust(tracked, repository_id, "pusher")["effective"] == "pusher"
    return github, work, repository_id


def push_body(github: GitHubWorld, before: str, after: str, message: str, *, login: str,
              email: str | None) -> bytes:
    """The corpus's push example with our repository, commit and pusher spliced in."""
    payload: dict[str, Any] = json.loads((CORPUS / "push.none.2.json").read_text())
    repo = github.stub.repo("octo", "api")
    payload["repository"].update(id=repo["id"], name="api", full_name="octo/api", clone_url=repo["clone_url"],
                                 html_url=f"{github.stub.web_url}/octo/api")
    payload["repository"]["owner"].update(login="octo", name="octo")
    payload.update(ref="refs/heads/main", before=before, after=after, created=False, deleted=False)
    commit = {"id": after, "tree_id": after, "distinct": True, "message": message,
              "timestamp": "2026-11-23T12:00:00Z", "url": f"{github.stub.web_url}/octo/api/commit/{after}",
              "author": {"name": "Alice", "email": "alice@example.com", "username": "alice"},
              "committer": {"name": "Alice", "email": "alice@example.com", "username": "alice"},
              "added": [], "removed": [], "modified": ["file.txt"]}
    payload["commits"], payload["head_commit"] = [commit], commit
    payload["pusher"] = {"name": login, **({"email": email} if email is not None else {})}
    payload["sender"]["login"] = login
    return json.dumps(payload).encode()


def push_and_deliver(rt: Runtime, hosted: tuple[GitHubWorld, GitRepo, int], message: str, *, login: str,
                     email: str | None) -> str:
    """Commit as alice, push over git, deliver the signed webhook naming the pusher, run the sync it asks for."""
    github, work, repository_id = hosted
    before = work.sha("HEAD")
    after = work.commit(message, author=ALICE)
    work.git("push", "-q", "origin", "main")
    body = push_body(github, before, after, message, login=login, email=email)
    headers = github.stub.delivery_headers("push", body, owner="octo", repo="api", delivery=str(uuid.uuid4()))
    dispatcher = Recorder()
    assert receive(rt, dispatcher, incoming(rt, GITHUB, headers, {}), body)["status"] == "queued"
    assert dispatcher.calls == [repository_id]
    run_sync(rt, repository_id, full=False)
    return after


def test_a_commit_pushed_by_someone_else_is_refused_with_the_reason(
    tracked: Runtime, hosted: tuple[GitHubWorld, GitRepo, int]
) -> None:
    sha = push_and_deliver(tracked, hosted, "API-1 #comment as alice #time 1h", login="mallory",
                           email="mallory@example.com")
    reason = ("refused by the pusher policy: the push was made by "
              f"{hosted[0].stub.web_url.split('://')[1]} user 'mallory' (mallory@example.com), who is not alice, "
              "the author")
    assert ledger(tracked) == [(sha, "error", reason), (sha, "error", reason)]
    assert comments(tracked) == []


def test_a_commit_pushed_by_its_author_runs_by_email(
    tracked: Runtime, hosted: tuple[GitHubWorld, GitRepo, int]
) -> None:
    sha = push_and_deliver(tracked, hosted, "API-1 #comment pushed by me", login="alice-gh",
                           email="alice@example.com")
    assert ledger(tracked) == [(sha, "done", "commented as alice")]
    assert comments(tracked) == [("alice", "pushed by me")]
    with tracked.sessions() as session:
        push = session.get(CommitPush, (hosted[2], sha))
        assert push is not None and (push.pusher_login, push.pusher_email) == ("alice-gh", "alice@example.com")


def test_a_commit_pushed_by_its_author_runs_by_host_login(
    tracked: Runtime, hosted: tuple[GitHubWorld, GitRepo, int]
) -> None:
    host = hosted[0].stub.web_url.split("://")[1]
    add_identity(tracked, "alice", host, "Alice-GH")  # logins compare without case
    sha = push_and_deliver(tracked, hosted, "API-1 #comment pushed with a private e-mail", login="alice-gh",
                           email=None)
    assert ledger(tracked) == [(sha, "done", "commented as alice")]
    assert comments(tracked) == [("alice", "pushed with a private e-mail")]


def test_an_unknown_pusher_login_is_refused_and_says_how_to_map_it(
    tracked: Runtime, hosted: tuple[GitHubWorld, GitRepo, int]
) -> None:
    host = hosted[0].stub.web_url.split("://")[1]
    sha = push_and_deliver(tracked, hosted, "API-1 #comment who am i", login="stranger", email=None)
    [(found, outcome, message)] = ledger(tracked)
    assert (found, outcome) == (sha, "error")
    assert message == (f"refused by the pusher policy: the push was made by {host} user 'stranger', who is no known "
                       f"user (devlink identity add USER {host} stranger)")
    assert comments(tracked) == []


def test_a_soft_synced_commit_without_a_push_record_is_refused(
    tracked: Runtime, hosted: tuple[GitHubWorld, GitRepo, int]
) -> None:
    _, work, repository_id = hosted
    sha = work.commit("API-1 #comment no webhook saw this", author=ALICE)
    work.git("push", "-q", "origin", "main")
    run_sync(tracked, repository_id, full=False)  # the scheduled sync, no delivery
    assert ledger(tracked) == [(sha, "error", "refused by the pusher policy: no host webhook said who pushed this "
                                              "commit (a commit read by a scheduled sync or a plain-git push hook "
                                              "has no pusher)")]
    assert comments(tracked) == []


def test_the_account_policy_applies_unless_the_repository_sets_its_own(
    tracked: Runtime, hosted: tuple[GitHubWorld, GitRepo, int]
) -> None:
    _, work, repository_id = hosted
    set_repository_trust(tracked, repository_id, "default")  # inherit again
    with tracked.sessions() as session:
        repository = session.get(Repository, repository_id)
        assert repository is not None and repository.smart_commit_trust is None
        account = session.get(Account, repository.account_id)
        assert account is not None
        account_name = account.name
    view = set_account_trust(tracked, account_name, "pusher")
    assert view["smart_commit_trust"] == "pusher" and view["smart_commit_trust_effective"] == "pusher"
    first = work.commit("API-1 #comment the account says pusher", author=ALICE)
    work.git("push", "-q", "origin", "main")
    run_sync(tracked, repository_id, full=False)
    assert [outcome for _, outcome, _ in ledger(tracked)] == ["error"]

    assert set_repository_trust(tracked, repository_id, "author")["effective"] == "author"  # overrides the account
    second = work.commit("API-1 #comment the repository says author", author=ALICE)
    work.git("push", "-q", "origin", "main")
    run_sync(tracked, repository_id, full=False)
    assert [(sha, outcome) for sha, outcome, _ in ledger(tracked)] == [(first, "error"), (second, "done")]
    assert comments(tracked) == [("alice", "the repository says author")]


def test_policy_values_are_checked(tracked: Runtime, hosted: tuple[GitHubWorld, GitRepo, int]) -> None:
    with pytest.raises(InvalidInput, match="use author, pusher or signed"):
        set_repository_trust(tracked, hosted[2], "trusted")
    with pytest.raises(InvalidInput, match="use author, pusher or signed"):
        set_account_trust(tracked, "octo", "everyone")


def test_identities_are_unique_per_host_and_listed(tracked: Runtime, hosted: tuple[GitHubWorld, GitRepo, int]) -> None:
    host = hosted[0].stub.web_url.split("://")[1]
    assert add_identity(tracked, "alice", host, "alice-gh") == {"user": "alice", "host": host, "login": "alice-gh"}
    with pytest.raises(Conflict, match="already alice's"):
        add_identity(tracked, "mallory", host, "ALICE-GH")
    with pytest.raises(NotFound, match=r"no host 'gitlab\.example'"):
        add_identity(tracked, "alice", "gitlab.example", "alice")
    with pytest.raises(NotFound, match="no user 'nobody'"):
        add_identity(tracked, "nobody", host, "x")
    assert list_identities(tracked) == [{"user": "alice", "host": host, "login": "alice-gh"}]
    assert list_identities(tracked, "bob") == []
    remove_identity(tracked, "alice", host, "alice-gh")
    assert list_identities(tracked) == []
    with pytest.raises(NotFound):
        remove_identity(tracked, "alice", host, "alice-gh")


# --------------------------------------------------------------------------- signed, with SSH keys


def ssh_key(tmp_path: Path, name: str) -> Path:
    key = tmp_path / "keys" / name
    key.parent.mkdir(exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@laptop", "-f", str(key)],
                   check=True, timeout=30)
    return key


def signed_commit(repo: GitRepo, message: str, key: Path | None, *, author: str = ALICE) -> str:
    repo._clock += 60
    (repo.path / "file.txt").write_text(f"{repo._clock}\n")
    repo.git("add", "file.txt")
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"] if key else []
    repo.git(*sign, "commit", "-q", *(["-S"] if key else []), "-m", message, "--author", author)
    return repo.sha("HEAD")


@pytest.fixture
def signing(tracked: Runtime, bare_remote: tuple[GitRepo, Path], tmp_path: Path) -> tuple[GitRepo, int, Path, Path]:
    """A plain repository with the ``signed`` policy, and alice's and bob's keys registered."""
    repo, server = bare_remote
    repo._clock = int(time.time()) - 3600
    repo.commit("initial")
    repo.git("push", "-q", "origin", "main")
    repository_id = add_repository(tracked, str(server)).id
    run_sync(tracked, repository_id, full=False)
    set_repository_trust(tracked, repository_id, "signed")
    alice, bob = ssh_key(tmp_path, "alice"), ssh_key(tmp_path, "bob")
    add_signing_key(tracked, "alice", alice.with_suffix(".pub").read_text())
    add_signing_key(tracked, "bob", bob.with_suffix(".pub").read_text())
    return repo, repository_id, alice, bob


def test_a_commit_signed_with_the_authors_key_runs(tracked: Runtime, signing: tuple[GitRepo, int, Path, Path]) -> None:
    repo, repository_id, alice, _ = signing
    sha = signed_commit(repo, "API-1 #comment signed by alice", alice)
    repo.git("push", "-q", "origin", "main")
    run_sync(tracked, repository_id, full=False)
    assert ledger(tracked) == [(sha, "done", "commented as alice")]
    assert comments(tracked) == [("alice", "signed by alice")]


def test_unsigned_commits_and_other_peoples_keys_are_refused(
    tracked: Runtime, signing: tuple[GitRepo, int, Path, Path], tmp_path: Path
) -> None:
    repo, repository_id, _, bob = signing
    unsigned = signed_commit(repo, "API-1 #comment not signed", None)
    by_bob = signed_commit(repo, "API-1 #comment bob signs as alice", bob)
    stranger = signed_commit(repo, "API-1 #comment unknown key", ssh_key(tmp_path, "stranger"))
    repo.git("push", "-q", "origin", "main")
    run_sync(tracked, repository_id, full=False)
    assert ledger(tracked) == [
        (unsigned, "error", "refused by the signed policy: the commit is not signed"),
        (by_bob, "error", "refused by the signed policy: the commit is signed with bob's key, but the author is alice"),
        (stranger, "error", "refused by the signed policy: the commit is signed with an SSH key no user registered "
                            "(register it: devlink signing-key add alice FILE)"),
    ]
    assert comments(tracked) == []


def test_without_ssh_keygen_the_reason_says_so(
    tracked: Runtime, signing: tuple[GitRepo, int, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, repository_id, alice, _ = signing
    sha = signed_commit(repo, "API-1 #comment signed by alice", alice)
    repo.git("push", "-q", "origin", "main")
    only_git = tmp_path / "only-git"
    only_git.mkdir()
    git = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True, check=True).stdout.strip()
    (only_git / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(only_git))
    run_sync(tracked, repository_id, full=False)
    [(found, outcome, message)] = ledger(tracked)
    assert (found, outcome) == (sha, "error")
    assert message.startswith("refused by the signed policy: the ssh-keygen command is not installed; git needs it "
                              "to verify SSH signatures")
    assert comments(tracked) == []


def test_signing_keys_are_checked_unique_and_listed(
    tracked: Runtime, signing: tuple[GitRepo, int, Path, Path]
) -> None:
    _, _, alice, _ = signing
    with pytest.raises(Conflict, match="already registered, to alice"):
        add_signing_key(tracked, "bob", alice.with_suffix(".pub").read_text())
    with pytest.raises(InvalidInput, match="private key"):
        add_signing_key(tracked, "alice", alice.read_text())
    with pytest.raises(InvalidInput, match="GPG signing keys are not supported yet"):
        add_signing_key(tracked, "alice", "-----BEGIN PGP PUBLIC KEY BLOCK-----\nabc\n")
    with pytest.raises(InvalidInput, match="not an OpenSSH public key line"):
        add_signing_key(tracked, "alice", "ssh-dss AAAAB3NzaC1kc3M= old")
    with pytest.raises(InvalidInput, match="not a valid SSH public key"):
        add_signing_key(tracked, "alice", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBOnQwr9 broken")
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(alice.with_suffix(".pub"))], capture_output=True,
                                 text=True, check=True, timeout=30).stdout.split()[1]
    [listed] = list_signing_keys(tracked, "alice")
    assert (listed["fingerprint"], listed["type"], listed["comment"]) == (fingerprint, "ssh-ed25519", "alice@laptop")
    assert len(list_signing_keys(tracked)) == 2
    remove_signing_key(tracked, "alice", fingerprint)
    assert list_signing_keys(tracked, "alice") == []
    with pytest.raises(NotFound):
        remove_signing_key(tracked, "alice", fingerprint)
