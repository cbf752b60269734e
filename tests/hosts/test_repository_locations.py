"""What ``add_repository`` accepts as a location, through the REST API and the CLI, and what its errors show.

The API has no working directory of its caller: a relative path is refused, and no error names
the server's own directories.  The CLI resolves a relative path against the user's directory and
names the path as the user gave it.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gitrepos import GitRepo
from servers import Server, start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # the API links local paths only under DEVLINK_LOCAL_REPOSITORY_ROOTS: here, every test's tmp_path
    running = start_server(tmp_path_factory.mktemp("serve") / "home",
                           {"DEVLINK_LOCAL_REPOSITORY_ROOTS": str(tmp_path_factory.getbasetemp())})
    yield running
    stop_server(running)


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    repo = GitRepo(tmp_path / "work")
    repo.commit("LOC-1 first")
    path = tmp_path / "server.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(path)], check=True)
    return path


def devlink(server: Server, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI run from ``cwd`` (a relative PYTHONPATH, such as ``src``, made absolute first)."""
    search = os.pathsep.join(os.path.abspath(p) for p in server.env.get("PYTHONPATH", "").split(os.pathsep) if p)
    return subprocess.run([sys.executable, "-m", "devlink", *args], env=dict(server.env, PYTHONPATH=search),
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("location", ["server.git", "./server.git", "~/server.git", "../x/server.git"])
def test_the_api_refuses_a_relative_path_without_naming_its_own_directories(
    server: Server, bare: Path, location: str
) -> None:
    answer = httpx.post(f"{server.url}/api/v1/repositories", headers=server.auth(), json={"url": location}, timeout=30)
    assert answer.status_code == 422
    problem = answer.json()
    assert (problem["type"], problem["title"]) == ("bad_url", f"{location} is a relative path: give an absolute path")
    for private in (os.getcwd(), str(Path.home()), str(server.home)):
        assert private not in answer.text


def test_the_api_takes_an_absolute_path(server: Server, bare: Path) -> None:
    answer = httpx.post(f"{server.url}/api/v1/repositories", headers=server.auth(),
                        json={"url": str(bare), "name": "absolute"}, timeout=30)
    assert answer.status_code == 201, answer.text
    assert answer.json()["url"] == str(bare)


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        pytest.param("https://me:hunter2@127.0.0.1:9/x.git", "https://127.0.0.1:9/x.git", id="unreachable"),
        pytest.param("ssh://me:hunter2@127.0.0.1/x.git", "an ssh URL cannot carry a password", id="ssh-password"),
        pytest.param("me:hunter2@127.0.0.1:x.git", "carry no password", id="scp-password"),
        pytest.param("ext::sh -c echo% hunter2", "remote helpers", id="ext"),
        pytest.param("-hunter2", "cannot start with '-'", id="option"),
    ],
)
def test_api_errors_never_echo_a_secret(server: Server, location: str, shown: str) -> None:
    answer = httpx.post(f"{server.url}/api/v1/repositories", headers=server.auth(), json={"url": location}, timeout=30)
    assert answer.status_code in (422, 502)
    assert shown in answer.json()["title"] and "hunter2" not in answer.text


def test_the_cli_resolves_a_relative_path_against_the_users_directory(server: Server, bare: Path) -> None:
    added = devlink(server, "repo", "add", "server.git", "--name", "relative", "--no-sync", cwd=bare.parent)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("linked relative (id ") and f"from {bare}\n" in added.stdout
    hook = devlink(server, "repo", "hook", "./server.git", cwd=bare.parent)  # found by the same resolution
    assert hook.returncode == 0, hook.stderr


def test_cli_errors_name_the_path_as_the_user_gave_it(server: Server, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    missing = devlink(server, "repo", "add", "missing.git", cwd=tmp_path)
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: missing.git does not exist")
    not_repo = devlink(server, "repo", "add", "plain", cwd=tmp_path)
    assert (not_repo.returncode, not_repo.stderr.strip()) == (1, "error: plain is not a git repository")
    unlinked = devlink(server, "repo", "hook", "plain", cwd=tmp_path)
    assert unlinked.returncode == 1 and unlinked.stderr.startswith("error: plain is not linked")


def test_the_api_refuses_system_trees_and_devlinks_own_mirrors(server: Server, bare: Path, tmp_path: Path) -> None:
    """A review linked /proc/self/cwd/… (which told where the server runs) and another repository's mirror."""
    with server.client() as client:
        first = client.post("/api/v1/repositories", json={"url": str(bare), "name": f"loc-{tmp_path.name}"})
        assert first.status_code == 201, first.text
        assert client.post(f"/api/v1/repositories/{first.json()['id']}/sync").status_code == 202
        server.wait_idle(first.json()["id"])
        mirror = server.home / "mirrors" / f"{first.json()['id']}.git"
        assert mirror.is_dir()
        for location in (str(mirror), "/proc/self/cwd", f"/proc/self/root{bare}", "/dev/shm", "/sys/kernel"):
            answer = client.post("/api/v1/repositories", json={"url": location, "name": "stolen"})
            assert (answer.status_code, answer.json().get("type")) == (422, "bad_url"), (location, answer.text)
            assert os.getcwd() not in answer.text
        # a missing path and a directory that is no repository read the same over the API: no existence oracle
        missing = client.post("/api/v1/repositories", json={"url": str(tmp_path / "nothing-here")})
        plain = client.post("/api/v1/repositories", json={"url": str(tmp_path)})
        assert missing.status_code == plain.status_code == 422
        assert missing.json()["title"].replace(str(tmp_path / "nothing-here"), "P") == \
            plain.json()["title"].replace(str(tmp_path), "P")


@pytest.mark.parametrize("name", ["octo/app\n", "octo/app\r", "app\n\n", " app", "app "])
def test_a_repository_name_is_matched_whole(server: Server, bare: Path, name: str) -> None:
    with server.client() as client:
        answer = client.post("/api/v1/repositories", json={"url": str(bare), "name": name})
    assert (answer.status_code, answer.json()["type"]) == (422, "bad_name"), answer.text


def test_the_api_links_no_path_outside_the_configured_roots(tmp_path: Path, bare: Path) -> None:
    """Without roots the API links no local path; with one, only paths inside it (a symlink out is outside)."""
    (tmp_path / "roots" / "inside").mkdir(parents=True)
    (tmp_path / "roots" / "inside" / "escape.git").symlink_to(bare)
    for roots in ("", str(tmp_path / "roots")):
        extra = {"DEVLINK_LOCAL_REPOSITORY_ROOTS": roots} if roots else {}
        running = start_server(tmp_path / f"home{len(roots)}", extra)
        try:
            with running.client() as client:
                for location in (str(bare), str(tmp_path / "roots" / "inside" / "escape.git"),
                                 str(tmp_path / "roots" / "missing.git")):
                    answer = client.post("/api/v1/repositories", json={"url": location})
                    if roots and location.endswith("missing.git"):
                        assert answer.json()["type"] == "not_a_repository", answer.text  # inside: checked as before
                        continue
                    assert (answer.status_code, answer.json()["type"]) == (422, "path_not_allowed"), answer.text
                    assert "DEVLINK_LOCAL_REPOSITORY_ROOTS" in answer.json()["title"]
            cli = devlink(running, "repo", "add", str(bare), "--name", "by-cli", "--no-sync", cwd=tmp_path)
            assert cli.returncode == 0, cli.stderr  # the CLI on the server may still add any path
        finally:
            stop_server(running)
