"""The ``devlink`` command as a user runs it: a subprocess with its own data directory."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from climain import InProcessCli
from github_world import TOKEN, GitHubWorld
from gitrepos import GitRepo


def devlink(home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DEVLINK_")}
    env["DEVLINK_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "devlink", *args], env=env, capture_output=True, text=True,
                          input=input, timeout=120)


@pytest.fixture
def server_repo(tmp_path: Path, bare_remote: tuple[GitRepo, Path]) -> tuple[GitRepo, Path]:
    repo, bare = bare_remote
    repo.commit("CLI-1 first")
    repo.branch("CLI-2-topic")
    repo.commit("CLI-2 second, also CLI-1")
    repo.git("push", "-q", "origin", "--all")
    return repo, bare


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["keys", "fix ABC-1, DEF-2 and feature/X1-3 ABC-1"], None, "ABC-1\nDEF-2\nX1-3\n"),
        (["keys", "--json", "no keys, M-1 abc-1"], None, "[]\n"),
        (["keys", "--json"], "line one KEY-1\nline two KEY-22\n", '["KEY-1", "KEY-22"]\n'),
        (["keys"], "", ""),
    ],
    ids=["argument", "json-none", "json-stdin", "empty-stdin"],
)
def test_keys(tmp_path: Path, args: list[str], stdin: str | None, expected: str) -> None:
    done = devlink(tmp_path, *args, input=stdin)
    assert (done.returncode, done.stdout) == (0, expected)


@pytest.mark.parametrize(
    "args",
    [["keys", "ABC-1 DEF-2"], ["keys", "--json", "ABC-1"], ["keys", "ABC-1", "--json"], ["keys"], ["keys", "--json"],
     ["keys", ""], ["keys", "--", "-ABC-1"], ["keys", "A-1", "B-2"], ["keys", "--jsn"], ["keys", "--help"],
     ["issue", "CLI-1"], ["issue", "--json", "CLI-1"], ["issue", "CLI-1", "--json"], ["issue", "cli-1"],
     ["issue"], ["issue", "--json"], ["issue", "CLI-1", "CLI-2"], ["issue", "--help"]],
)
def test_keys_and_issue_taken_directly_print_what_typer_prints(
    args: list[str], tmp_path: Path, server_repo: tuple[GitRepo, Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``main`` runs the plain forms of ``keys`` and ``issue`` without typer (start-up time); nothing may differ."""
    import devlink.cli

    cli = InProcessCli(tmp_path / "home", monkeypatch, capsys)
    assert cli("repo", "add", str(server_repo[1]), "--name", "tool").code == 0

    def run(direct: bool) -> tuple[int, str, str]:
        with monkeypatch.context() as patch:
            if not direct:
                patch.setattr(devlink.cli, "_run_directly", lambda args: False)
            ran = cli(*args, input="from stdin: STD-1\n")
        return ran.code, ran.stdout, ran.stderr

    assert run(direct=True) == run(direct=False)


def test_add_list_issue_sync_remove(tmp_path: Path, server_repo: tuple[GitRepo, Path]) -> None:
    repo, bare = server_repo
    home = tmp_path / "home"

    added = devlink(home, "repo", "add", str(bare), "--name", "tool")
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == [
        f"linked tool (id 1) from {bare}",
        "tool: soft sync done: 2 commits read, 2 new, branches +2 ~0 -0; 2 commits indexed",
    ]

    document = json.loads(devlink(home, "issue", "CLI-1", "--json").stdout)
    assert [c["summary"] for c in document["commits"]] == ["CLI-2 second, also CLI-1", "CLI-1 first"]
    assert [b["name"] for b in document["branches"]] == []
    assert [b["name"] for b in json.loads(devlink(home, "issue", "CLI-2", "--json").stdout)["branches"]] == [
        "CLI-2-topic"
    ]

    listed = json.loads(devlink(home, "repo", "list", "--json").stdout)
    assert [(r["name"], r["url"], r["sync"]["state"], r["sync"]["commits_indexed"]) for r in listed] == [
        ("tool", str(bare), "idle", 2)
    ]
    assert "tool" in devlink(home, "repo", "list").stdout

    repo.commit("CLI-3 third")
    repo.git("push", "-q", "origin", "main")
    queued = devlink(home, "sync", "tool")
    assert queued.returncode == 0
    assert queued.stdout.startswith("tool: soft sync queued\n")  # named, not "repository 1"
    waited = devlink(home, "sync", "tool", "--wait")
    assert "tool: soft sync done: 1 commits read, 1 new" in waited.stdout
    full = devlink(home, "sync", "--full", "--wait")
    assert "tool: full sync done: 3 commits read, 0 new" in full.stdout

    removed = devlink(home, "repo", "remove", "tool")
    assert (removed.returncode, removed.stdout) == (0, "removed tool\n")
    assert json.loads(devlink(home, "issue", "CLI-1", "--json").stdout)["commits"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["issue", "not-a-key"], "error: 'not-a-key' is not an issue key (like ABC-123)"),
        (["issue", "kafka-16845"], "error: 'kafka-16845' is not an issue key (like ABC-123)\n"
                                   "hint: did you mean KAFKA-16845? Keys are upper case"),
        (["repo", "remove", "nope"], "error: no repository 'nope'\nhint: see them with: devlink repo list"),
        (["sync", "nope"], "error: no repository 'nope'"),
        (["repo", "add", "ftp://127.0.0.1/x"], "error: invalid repository location: unsupported URL scheme 'ftp'"),
        (["repo", "add", "https://me:pa55word@127.0.0.1:9/x.git"], "error: https://127.0.0.1:9/x.git is unreachable"),
    ],
    ids=["bad-key", "lower-case-key", "remove-unknown", "sync-unknown", "bad-scheme", "unreachable-with-secret"],
)
def test_errors_exit_1_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    done = devlink(tmp_path, *args)
    assert done.returncode == 1
    assert done.stderr.startswith(message)
    assert "pa55word" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_missing_path_loses_nothing(tmp_path: Path, server_repo: tuple[GitRepo, Path]) -> None:
    _, bare = server_repo
    home = tmp_path / "home"
    assert devlink(home, "repo", "add", str(bare)).returncode == 0
    failed = devlink(home, "repo", "add", str(tmp_path / "missing"))
    assert (failed.returncode, failed.stderr.strip()) == (1, f"error: {tmp_path / 'missing'} does not exist")
    assert [r["name"] for r in json.loads(devlink(home, "repo", "list", "--json").stdout)] == ["server"]


def test_hook_script_printed_and_installed(tmp_path: Path, server_repo: tuple[GitRepo, Path]) -> None:
    _, bare = server_repo
    home = tmp_path / "home"
    assert devlink(home, "repo", "add", str(bare), "--no-sync").returncode == 0
    printed = devlink(home, "repo", "hook", str(bare), "--url", "http://127.0.0.1:9999/")
    assert printed.returncode == 0
    assert printed.stdout.startswith("#!/bin/sh\n# devlink post-receive hook for server")
    assert "url='http://127.0.0.1:9999/hooks/git'" in printed.stdout
    assert devlink(home, "repo", "hook", str(bare)).stdout != devlink(home, "repo", "hook", str(tmp_path)).stdout

    installed = devlink(home, "repo", "hook", str(bare), "--install")
    assert installed.returncode == 0
    hook = bare / "hooks" / "post-receive"
    assert hook.stat().st_mode & 0o111
    hook.write_text("#!/bin/sh\necho someone else's hook\n")
    refused = devlink(home, "repo", "hook", str(bare), "--install")
    assert refused.returncode == 1
    assert "exists and was not written by devlink" in refused.stderr
    assert hook.read_text() == "#!/bin/sh\necho someone else's hook\n"


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "histories"


def test_backfill_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal, ``repo add`` draws Rich's bar with a commit count and rate (here 3,000 Kafka commits)."""
    import os
    import pty

    bare = tmp_path / "kafka.git"
    subprocess.run([sys.executable, str(CORPUS / "make_repo.py"), str(CORPUS / "kafka.commits.jsonl.gz"), str(bare),
                    "--bare", "--limit", "3000", "--quiet"], check=True, capture_output=True)
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLINK_")}
    env.update(DEVLINK_HOME=str(tmp_path / "home"), COLUMNS="120", TERM="xterm")
    process = subprocess.Popen([sys.executable, "-m", "devlink", "repo", "add", str(bare)], env=env,
                               stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process is done
            break
        if not chunk:
            break
        screen += chunk
    stdout = process.communicate(timeout=60)[0]
    os.close(leader)
    text = screen.decode(errors="replace")
    assert process.returncode == 0
    assert "indexing commits" in text
    assert "3000/3000" in text
    assert "commits/s" in text
    assert "3000 new" in stdout


# ---------------------------------------------------------------- keys whose project is not in the tracker


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    return InProcessCli(tmp_path / "home", monkeypatch, capsys)


def test_repo_add_and_sync_name_the_projects_whose_keys_were_not_linked(
    cli: InProcessCli, bare_remote: tuple[GitRepo, Path]
) -> None:
    repo, bare = bare_remote
    repo.commit("APP-1 a key of a tracker project")
    repo.commit("KAFKA-1 and KAFKA-2, see KIP-9")
    repo.branch("KAFKA-3-topic")
    repo.git("push", "-q", "origin", "--all")
    assert cli("tracker", "project", "APP", "App").code == 0

    added = cli("repo", "add", str(bare), "--name", "kafka")
    assert added.code == 0, added.stderr
    assert added.stdout.splitlines()[1:] == [
        "kafka: soft sync done: 2 commits read, 2 new, branches +2 ~0 -0; 2 commits indexed",
        "  4 key mentions not linked because their project is not in the tracker: KAFKA 3, KIP 1",
        "  for each that is a project of yours: devlink tracker project KEY NAME (e.g. KAFKA), "
        "then: devlink sync kafka --full --wait",
    ]

    assert cli("tracker", "project", "KAFKA", "Kafka").code == 0  # what it said to do
    synced = cli("sync", "kafka", "--full", "--wait")
    assert synced.stdout.splitlines()[1:] == [
        "  1 key mention not linked because their project is not in the tracker: KIP 1",
        "  for each that is a project of yours: devlink tracker project KEY NAME (e.g. KIP), "
        "then: devlink sync kafka --full --wait",
    ]
    linked = json.loads(cli("issue", "KAFKA-3", "--json").stdout)
    assert ([b["name"] for b in linked["branches"]], linked["project_known"]) == (["KAFKA-3-topic"], True)
    assert [c["summary"] for c in json.loads(cli("issue", "KAFKA-2", "--json").stdout)["commits"]] == [
        "KAFKA-1 and KAFKA-2, see KIP-9"
    ]


def test_the_unlinked_line_names_the_top_projects_and_counts_the_rest(
    cli: InProcessCli, bare_remote: tuple[GitRepo, Path]
) -> None:
    repo, bare = bare_remote
    for count, project in enumerate(["AA", "BB", "CC", "DD", "EE", "FF", "GG"], start=1):
        repo.commit(" ".join(f"{project}-{n}" for n in range(8 - count)))  # AA 7 mentions ... GG 1
    repo.git("push", "-q", "origin", "--all")
    assert cli("tracker", "project", "APP", "App").code == 0

    added = cli("repo", "add", str(bare), "--name", "many")
    assert ("  28 key mentions not linked because their project is not in the tracker: "
            "AA 7, BB 6, CC 5, DD 4, EE 3, and 2 more projects") in added.stdout.splitlines()


def test_issue_explains_a_key_whose_project_is_not_in_the_tracker(cli: InProcessCli) -> None:
    assert cli("tracker", "project", "DEMO", "Demo").code == 0
    notice = ("KAFKA is not a project of the tracker, so KAFKA keys are not linked; "
              "create it: devlink tracker project KAFKA NAME, then re-link history: devlink sync --full --wait")

    text = cli("issue", "KAFKA-16845")
    assert (text.code, text.stdout) == (0, "KAFKA-16845: 0 commits, 0 branches, 0 pull requests in 0 repositories\n")
    assert text.stderr == f"note: {notice}\n"

    document = json.loads(cli("issue", "KAFKA-16845", "--json").stdout)
    assert (document["project_known"], document["notice"]) == (False, notice)

    known = cli("issue", "DEMO-1")
    assert (known.code, known.stderr) == (0, "")
    assert json.loads(cli("issue", "DEMO-1", "--json").stdout)["project_known"] is True


def test_issue_lists_the_pull_requests_it_counts(cli: InProcessCli, github: GitHubWorld) -> None:
    github.repo("octo", "api")
    github.stub.add_pull("octo", "api", title="API-1 Rate limits", head="feature/API-1-budget")
    github.stub.add_pull("octo", "api", title="Merged API-1 follow-up", head="fix", merged=True)
    added = cli("account", "add", "github", "octo", "--url", github.stub.web_url, "--token", "-", "--link", "api",
                input=TOKEN + "\n")
    assert added.code == 0, added.stderr

    shown = cli("issue", "API-1")
    document = json.loads(cli("issue", "API-1", "--json").stdout)
    pulls = document["pull_requests"]
    expected = [f"  pull request  octo/api#{p['number']}  {p['state']}  {p['title']}" for p in pulls]
    assert len(expected) == 2
    assert shown.stdout.splitlines() == [
        "API-1: 0 commits, 0 branches, 2 pull requests in 1 repository",
        *expected,
    ]
    assert {line.split("  ")[3] for line in expected} == {"open", "merged"}


def test_serve_on_a_taken_port_says_so_before_starting(tmp_path: Path) -> None:
    """uvicorn alone printed the banner, started the queue, then exited 3 with its own traceback line."""
    import os
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "devlink", "serve", "--port", str(port)], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "DEVLINK_HOME": str(tmp_path / "home")})
    assert done.returncode == 1, done.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "Application startup complete" not in done.stderr
