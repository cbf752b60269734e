"""`devlink repo set --trust`, `account set --trust`, `devlink identity` and `devlink signing-key`, in-process."""

import json
import subprocess
from pathlib import Path

import pytest

from climain import InProcessCli
from github_world import TOKEN, GitHubWorld
from gitrepos import GitRepo

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(tmp_path / "home", monkeypatch, capsys)


def test_repo_set_trust_and_back_to_default(cli: InProcessCli, bare_remote: tuple[GitRepo, Path]) -> None:
    _, bare = bare_remote
    assert cli("repo", "add", str(bare), "--name", "app").code == 0
    assert cli("repo", "set", "app", "--trust", "signed").stdout == "app: smart-commit trust signed\n"
    [view] = json.loads(cli("repo", "list", "--json").stdout)
    assert (view["smart_commit_trust"], view["smart_commit_trust_effective"]) == ("signed", "signed")
    both = cli("repo", "set", "app", "--no-smart-commits", "--trust", "default")
    assert both.stdout == "app: smart commits off\napp: smart-commit trust author (inherited)\n"
    [view] = json.loads(cli("repo", "list", "--json").stdout)
    assert (view["smart_commits"], view["smart_commit_trust"], view["smart_commit_trust_effective"]) == (
        False, None, "author")


def test_a_bad_policy_changes_nothing(cli: InProcessCli, bare_remote: tuple[GitRepo, Path]) -> None:
    _, bare = bare_remote
    assert cli("repo", "add", str(bare), "--name", "app").code == 0
    bad = cli("repo", "set", "app", "--smart-commits", "--trust", "anyone")
    assert bad.code == 1
    assert "unknown smart-commit trust policy 'anyone': use author, pusher or signed (or default to inherit)" in (
        bad.stderr)
    nothing = cli("repo", "set", "app")
    assert nothing.code == 1 and "nothing to change" in nothing.stderr


def test_account_set_trust_is_its_repositories_default(cli: InProcessCli, github: GitHubWorld) -> None:
    github.repo("octo", "api")
    added = cli("account", "add", "github", "octo", "--url", github.stub.web_url, "--token", TOKEN, "--link", "api")
    assert added.code == 0, added.stderr
    assert cli("account", "set", "octo", "--trust", "pusher").stdout == (
        "octo: auto-link off, smart commits on, smart-commit trust pusher\n")
    [view] = [v for v in json.loads(cli("repo", "list", "--json").stdout) if v["name"] == "octo/api"]
    assert (view["smart_commit_trust"], view["smart_commit_trust_effective"]) == (None, "pusher")
    bad = cli("account", "set", "octo", "--auto-link", "--trust", "nobody")
    assert bad.code == 1 and "use author, pusher or signed" in bad.stderr
    assert cli("account", "set", "octo").stdout == "octo: auto-link off, smart commits on\n"  # unchanged by the refusal


def test_identity_add_list_remove(cli: InProcessCli, github: GitHubWorld) -> None:
    github.repo("octo", "api")
    assert cli("account", "add", "github", "octo", "--url", github.stub.web_url, "--token", TOKEN).code == 0
    host = github.stub.web_url.split("://")[1]
    assert cli("tracker", "user", "alice", "--email", "alice@example.com").code == 0
    assert cli("identity", "add", "alice", host, "Alice-GH").stdout == f"{host} alice-gh → alice\n"
    taken = cli("identity", "add", "alice", host, "alice-gh")
    assert taken.code == 1 and "already alice's" in taken.stderr
    assert cli("identity", "list").stdout == f"alice\t{host}\talice-gh\n"
    assert json.loads(cli("identity", "list", "alice", "--json").stdout) == [
        {"user": "alice", "host": host, "login": "alice-gh"}]
    assert cli("identity", "remove", "alice", host, "alice-gh").stdout == f"removed {host} alice-gh of alice\n"
    assert cli("identity", "list").stdout == ""
    unknown = cli("identity", "add", "alice", "nowhere.example", "x")
    assert unknown.code == 1 and "no host 'nowhere.example'" in unknown.stderr


def test_signing_key_add_list_remove(cli: InProcessCli, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", str(key)], check=True,
                   timeout=30)
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(key) + ".pub"], capture_output=True, text=True,
                                 check=True, timeout=30).stdout.split()[1]
    assert cli("tracker", "user", "alice").code == 0
    added = cli("signing-key", "add", "alice", str(key) + ".pub")
    assert added.stdout == f"alice: ssh-ed25519 {fingerprint} alice@laptop\n", added.stderr
    again = cli("signing-key", "add", "alice", "-", input=(tmp_path / "id_ed25519.pub").read_text())
    assert again.code == 1 and "already registered, to alice" in again.stderr
    private = cli("signing-key", "add", "alice", str(key))
    assert private.code == 1 and "that is a private key" in private.stderr
    missing = cli("signing-key", "add", "alice", str(tmp_path / "nope.pub"))
    assert missing.code == 1 and "cannot read" in missing.stderr
    assert cli("signing-key", "list", "alice").stdout == f"alice\tssh-ed25519\t{fingerprint}\talice@laptop\n"
    assert cli("signing-key", "remove", "alice", fingerprint).stdout == f"removed {fingerprint} of alice\n"
    assert json.loads(cli("signing-key", "list", "--json").stdout) == []
