"""The post-receive hook against a real ``devlink serve``: its token lives in a 0600 file, never in argv.

The hook runs for real (a push to a bare repository on disk), through curl and through the python3
fallback, and devlink must index the pushed commit; a watch samples the argv of every process the
push starts (git, receive-pack, the hook's shell, curl) for the token.
"""

import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gitrepos import GitRepo, watch_processes
from servers import Server, start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("serve") / "home")
    yield running
    stop_server(running)


@pytest.fixture
def linked(server: Server, tmp_path: Path) -> tuple[GitRepo, Path]:
    repo = GitRepo(tmp_path / "work")
    bare = tmp_path / "server.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    repo.git("remote", "add", "origin", str(bare))
    repo.commit("PUSH-1 before the hook")
    repo.git("push", "-q", "origin", "main")
    added = server.cli("repo", "add", str(bare), "--name", f"hooked-{tmp_path.name}")
    assert added.returncode == 0, added.stderr
    return repo, bare


def wait_for_commit(server: Server, key: str, sha: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        commits = httpx.get(f"{server.url}/api/v1/issues/{key}/development", headers=server.auth(),
                            timeout=10).json()["commits"]
        if [c["sha"] for c in commits] == [sha]:
            return
        assert time.monotonic() < deadline, "the pushed commit never appeared"
        time.sleep(0.05)


def token_of(bare: Path) -> str:
    line = (bare / "hooks" / "devlink-token").read_text()
    assert line.startswith("X-Devlink-Token: ") and line.endswith("\n")
    return line.partition(": ")[2].strip()


def test_the_installed_hook_notifies_devlink_with_the_token_in_no_argv(
    server: Server, linked: tuple[GitRepo, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, bare = linked
    installed = server.cli("repo", "hook", str(bare), "--install", "--url", server.url)
    assert installed.returncode == 0, installed.stderr
    token = token_of(bare)
    token_file = bare / "hooks" / "devlink-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    script = (bare / "hooks" / "post-receive").read_text()
    assert token not in script and f"url='{server.url}/hooks/git'" in script

    sha = repo.commit("PUSH-2 arrives through the post-receive hook")
    with watch_processes(monkeypatch, interval=0.0005) as watch:
        repo.git("push", "-q", "origin", "main")  # runs the real hook, which posts to devlink with curl
        wait_for_commit(server, "PUSH-2", sha)
    assert any(seen.comm == "post-receive" or b"post-receive" in seen.cmdline for seen in watch.seen.values())
    for seen in watch.seen.values():
        assert token.encode() not in seen.cmdline, seen.cmdline
    # curl, when the watch caught it, read the header from the file
    assert all(b"-H\0@" in seen.cmdline and b"devlink-token" in seen.cmdline
               for seen in watch.seen.values() if seen.comm == "curl")


def test_without_curl_the_python_fallback_notifies_devlink(
    server: Server, linked: tuple[GitRepo, Path], tmp_path: Path
) -> None:
    repo, bare = linked
    assert server.cli("repo", "hook", str(bare), "--install", "--url", server.url).returncode == 0
    old = repo.sha("HEAD")
    sha = repo.commit("PUSH-3 announced by python3")
    # push without running the hook, then run it by hand with a PATH that has no curl
    repo.git("push", "-q", "--receive-pack=git -c core.hooksPath=/nonexistent receive-pack", "origin", "main")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "cat", "dirname", "python3"):
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        (bin_dir / tool).symlink_to(os.path.realpath(found))
    ran = subprocess.run(["hooks/post-receive"], cwd=bare, input=f"{old} {sha} refs/heads/main\n",
                         capture_output=True, text=True, env={"PATH": str(bin_dir)}, timeout=30)
    assert (ran.returncode, ran.stderr) == (0, "")
    wait_for_commit(server, "PUSH-3", sha)


def test_printing_the_hook_shows_no_token_and_says_how_the_token_file_is_made(
    server: Server, linked: tuple[GitRepo, Path], tmp_path: Path
) -> None:
    _, bare = linked
    printed = server.cli("repo", "hook", str(bare), "--url", "http://127.0.0.1:9999/")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("#!/bin/sh\n# devlink post-receive hook for hooked-")
    assert "url='http://127.0.0.1:9999/hooks/git'" in printed.stdout
    assert "devlink-token" in printed.stderr and "--install" in printed.stderr and "--token-file" in printed.stderr
    assert not (bare / "hooks" / "devlink-token").exists()

    target = tmp_path / "copy-me"
    written = server.cli("repo", "hook", str(bare), "--token-file", str(target))
    assert written.returncode == 0, written.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    token = target.read_text().partition(": ")[2].strip()
    assert token and token not in printed.stdout + printed.stderr + written.stdout + written.stderr
    answer = httpx.post(f"{server.url}/hooks/git", headers={"X-Devlink-Token": token}, timeout=10)
    assert answer.status_code == 202


def test_the_hook_calls_the_address_devlink_serves_on_by_default(server: Server, linked: tuple[GitRepo, Path]) -> None:
    """Without --url the hook posts where the running ``devlink serve`` listens, not to DEVLINK_PORT's default."""
    _, bare = linked
    printed = server.cli("repo", "hook", str(bare))
    assert printed.returncode == 0, printed.stderr
    assert f"url='{server.url}/hooks/git'" in printed.stdout


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("javascript:alert(1)", id="not-http"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("127.0.0.1:8000", id="no-scheme"),
        pytest.param("http://127.0.0.1:8000/'; rm -rf ~; '", id="shell-quote"),
        pytest.param("http://me:pw@127.0.0.1:8000", id="credentials"),
        pytest.param("http://", id="no-host"),
    ],
)
def test_hook_url_must_be_devlinks_http_address(server: Server, linked: tuple[GitRepo, Path], url: str) -> None:
    _, bare = linked
    refused = server.cli("repo", "hook", str(bare), "--url", url)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: --url must be devlink's address as an http:// or https:// URL")
    assert refused.stdout == "" and "Traceback" not in refused.stderr
