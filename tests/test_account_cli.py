"""``devlink account`` and ``devlink host`` as a user runs them, against the stub GitHub."""

import json
from pathlib import Path

from github_world import TOKEN, GitHubWorld
from test_tracker_cli import devlink


def test_account_add_repos_link_unlink_set_and_remove(github: GitHubWorld, tmp_path: Path) -> None:
    home = tmp_path / "home"
    github.repo("octo", "api")
    github.repo("octo", "web")
    url = github.stub.web_url
    added = devlink(home, "account", "add", "github", "octo", "--url", url, "--token", "-", "--link", "api",
                    input=TOKEN + "\n")
    assert added.returncode == 0, added.stderr
    assert "linked account octo (id 1): 2 repositories found, 1 linked" in added.stdout
    assert "full sync done: 1 commits read, 1 new" in added.stdout
    assert TOKEN not in added.stdout + added.stderr
    assert len(github.stub.hooks("octo", "api")) == 1

    listed = devlink(home, "account", "repos", "octo", "--json")
    views = {v["name"]: v for v in json.loads(listed.stdout)}
    assert (views["octo/api"]["linked"], views["octo/web"]["linked"]) == (True, False)
    assert views["octo/api"]["webhook"]["state"] == "installed"

    linked = devlink(home, "account", "repos", "octo", "--link", "web")
    assert linked.returncode == 0, linked.stderr
    assert "octo/web: full sync done" in linked.stdout
    assert len(github.stub.hooks("octo", "web")) == 1
    unlinked = devlink(home, "account", "repos", "octo", "--unlink", "api")
    assert unlinked.returncode == 0 and github.stub.hooks("octo", "api") == []
    missing = devlink(home, "account", "repos", "octo", "--link", "nope")
    assert missing.returncode == 1 and "not among the account's repositories: nope" in missing.stderr

    assert devlink(home, "account", "set", "octo", "--auto-link").stdout == "octo: auto-link on, smart commits on\n"
    accounts = json.loads(devlink(home, "account", "list", "--json").stdout)
    assert [(a["name"], a["auto_link"], a["repositories"]["linked"]) for a in accounts] == [("octo", True, 1)]
    assert TOKEN not in json.dumps(accounts)

    again = devlink(home, "account", "add", "github", "octo", "--url", url, "--token", TOKEN)
    assert again.returncode == 1 and "already linked" in again.stderr

    removed = devlink(home, "account", "remove", "octo")
    assert removed.returncode == 0 and github.stub.hooks("octo", "web") == []
    assert json.loads(devlink(home, "account", "list", "--json").stdout) == []


def test_account_add_errors_are_clear(github: GitHubWorld, tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = github.stub.web_url
    bad = devlink(home, "account", "add", "github", "octo", "--url", url, "--token", "ghp_nope")
    assert bad.returncode == 1 and "refused the credential" in bad.stderr and "ghp_nope" not in bad.stderr
    nobody = devlink(home, "account", "add", "github", "ghost", "--url", url, "--token", TOKEN)
    assert nobody.returncode == 1 and "account 'ghost' not found" in nobody.stderr
    kind = devlink(home, "account", "add", "gitlab", "octo", "--token", TOKEN)
    assert kind.returncode == 1 and "unknown host kind 'gitlab'" in kind.stderr
    host = devlink(home, "host", "set", "--url", url, "--oauth-client-id", "Iv1.abc", "--oauth-client-secret", "-",
                   input="s3cret\n")
    assert host.returncode == 0 and "OAuth App set" in host.stdout and "s3cret" not in host.stdout
