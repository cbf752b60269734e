"""``devlink account`` and ``devlink host`` as a user runs them, against the stub GitHub."""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from github_world import TOKEN, GitHubWorld


def devlink(home: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it on ``home``, without this machine's DEVLINK_* settings (``env`` adds some)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEVLINK_")}
    clean |= {"DEVLINK_HOME": str(home), **(env or {})}
    return subprocess.run([sys.executable, "-m", "devlink", *args], env=clean, capture_output=True, text=True,
                          input=input, timeout=120)


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
    kind = devlink(home, "account", "add", "fossil", "octo", "--token", TOKEN)
    assert kind.returncode == 1 and "unknown host kind 'fossil'; devlink links: github, gitlab" in kind.stderr
    host = devlink(home, "host", "set", "--url", url, "--oauth-client-id", "Iv1.abc", "--oauth-client-secret", "-",
                   input="s3cret\n")
    assert host.returncode == 0 and "OAuth application set" in host.stdout and "s3cret" not in host.stdout
    assert "re-pinned" not in host.stdout  # no account on the host yet


def test_host_set_moving_the_api_re_pins_the_accounts_and_says_so(github: GitHubWorld, tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = github.stub.web_url
    github.repo("octo", "api")
    added = devlink(home, "account", "add", "github", "octo", "--url", url, "--token", "-", input=TOKEN + "\n")
    assert added.returncode == 0, added.stderr
    moved = f"http://localhost:{github.stub.port}/api/v3"
    refused = devlink(home, "account", "add", "github", "ada", "--url", url, "--api-url", moved, "--token", TOKEN)
    assert refused.returncode == 1 and "another api_url" in refused.stderr and "devlink host set" in refused.stderr
    changed = devlink(home, "host", "set", "--url", url, "--api-url", moved)
    assert changed.returncode == 0, changed.stderr
    assert f"  re-pinned: the credentials of octo go to {moved} from now on" in changed.stdout
    mark = len(github.stub.requests)
    assert devlink(home, "account", "repos", "octo", "--refresh").returncode == 0
    assert {r.headers["host"] for r in github.stub.requests[mark:]} == {f"localhost:{github.stub.port}"}


def test_account_add_warns_that_a_loopback_webhook_url_only_reaches_this_machine(
    github: GitHubWorld, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    github.repo("octo", "api")
    added = devlink(home, "account", "add", "github", "octo", "--url", github.stub.web_url, "--token", "-",
                    "--link", "all", "--no-sync", input=TOKEN + "\n")
    assert added.returncode == 0, added.stderr
    warning = ("warning: the host will call http://127.0.0.1:8000/hooks/github, which only this machine can reach; "
               "set DEVLINK_BASE_URL")
    assert warning in added.stdout
    [view] = json.loads(devlink(home, "account", "repos", "octo", "--json").stdout)
    assert "only this machine can reach" in view["webhook"]["error"] and view["webhook"]["state"] == "installed"
    refreshed = devlink(home, "account", "repos", "octo", "--refresh")
    assert warning in refreshed.stdout and "only this machine can reach" in refreshed.stdout
    # with a public address there is nothing to warn about, and the note on the repository goes
    public = devlink(home, "account", "repos", "octo", "--refresh", "--json", env={
        "DEVLINK_BASE_URL": "https://devlink.example.com"})
    assert public.returncode == 0 and "warning" not in public.stdout
    [view] = json.loads(public.stdout)
    assert view["webhook"]["error"] is None
    assert [h["config"]["url"] for h in github.stub.hooks("octo", "api")] == [
        "https://devlink.example.com/hooks/github"]


def test_cli_lookups_are_exact_and_never_take_unicode_digits_for_ids(github: GitHubWorld, tmp_path: Path) -> None:
    home = tmp_path / "home"
    github.stub.add_org("acme", members=["octo"])
    github.repo("acme", "api")
    for name in ("acme", "octo"):  # account ids 1 and 2; repository acme/api is id 1
        added = devlink(home, "account", "add", "github", name, "--url", github.stub.web_url, "--token", "-",
                        "--link", "all", "--no-sync", input=TOKEN + "\n")
        assert added.returncode == 0, added.stderr
    # LIKE patterns, an Arabic-Indic 1 (int() reads it: account 1), a superscript (int() raises), 64-bit overflow
    account_commands = [("account", "remove", "a%"), ("account", "remove", "\u0661"), ("account", "remove", "a___"),
                        ("account", "set", "\u0662", "--auto-link"), ("account", "repos", "\u00b3"),
                        ("account", "remove", str(2**63))]
    for args in account_commands:
        done = devlink(home, *args)
        assert (done.returncode, "Traceback" in done.stderr) == (1, False), (args, done.stderr)
        assert f"no linked account {args[2]!r}" in done.stderr, done.stderr
    for args in (("repo", "set", "\u0661", "--no-smart-commits"), ("sync", "\u00b3"), ("repo", "remove", "\u0661"),
                 ("repo", "remove", str(2**63))):
        done = devlink(home, *args)
        assert (done.returncode, "Traceback" in done.stderr) == (1, False), (args, done.stderr)
        assert "no repository" in done.stderr, done.stderr
    accounts = json.loads(devlink(home, "account", "list", "--json").stdout)
    assert [(a["name"], a["auto_link"]) for a in accounts] == [("acme", False), ("octo", False)]
    [repo] = json.loads(devlink(home, "repo", "list", "--json").stdout)
    assert (repo["id"], repo["smart_commits"]) == (1, True)
    assert devlink(home, "account", "repos", "ACME", "--json").returncode == 0  # logins ignore case


def test_pull_requests_skipped_or_waiting_for_the_budget_are_shown_and_never_fail_the_command(
    github: GitHubWorld, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    stub = github.stub
    github.repo("octo", "api")
    stub.add_pull("octo", "api", title="API-1", head="b1")
    stub.fail_next("GET", "/pulls", 403)  # a token without "Pull requests: read"
    added = devlink(home, "account", "add", "github", "octo", "--url", stub.web_url, "--token", "-", "--link", "all",
                    input=TOKEN + "\n")
    assert added.returncode == 0, added.stderr
    assert "octo/api: full sync done: 1 commits read, 1 new" in added.stdout
    assert "  pull requests skipped: " in added.stdout and "forbidden" in added.stdout
    assert "pull requests skipped: " in devlink(home, "account", "repos", "octo").stdout
    assert "pull requests skipped: " in devlink(home, "repo", "list").stdout

    reset = time.time() + 1800
    stub.set_rate_limit(100, limit=5000, reset=reset)  # below the reserve (10 % of 5000)
    assert devlink(home, "account", "repos", "octo", "--refresh").returncode == 0  # devlink learns the budget
    synced = devlink(home, "sync", "--wait")
    assert synced.returncode == 0, synced.stderr + synced.stdout
    until = datetime.fromtimestamp(int(reset), UTC).strftime("%H:%M")
    line = f"pull requests wait for the API budget until {until} UTC; they resume by themselves"
    assert f"  {line}" in synced.stdout
    assert line in devlink(home, "repo", "list").stdout and line in devlink(home, "account", "repos", "octo").stdout
    [view] = json.loads(devlink(home, "repo", "list", "--json").stdout)
    assert (view["sync"]["state"], view["sync"]["error"]) == ("idle", None)
    note = view["sync"]["skipped"]["pull_requests"]
    assert note["reason"] == "rate_limited" and note["resumes_at"].startswith(
        datetime.fromtimestamp(int(reset), UTC).isoformat()[:16])
    assert view["sync"]["next_at"][:16] == note["resumes_at"][:16]  # the scheduler comes back at the reset
