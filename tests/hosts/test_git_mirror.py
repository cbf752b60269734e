"""``Mirror`` and ``check_remote`` against real repositories built with the git CLI.

Each test builds a working repository and a bare "server" it pushes to, in
tmp_path, with a fixed identity and fixed dates (one minute apart, so the order
of commits is known).  The mirror clones the server by path or ``file://`` URL;
the only network address ever used is a closed port on loopback.
"""

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devlink.domain.issue_keys import extract_keys
from devlink.errors import GitError
from devlink.hosts.git import GitCommit, Mirror, RemoteAccess, check_remote

T0 = 1_700_000_000
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
MISSING_SHA = "deadbeef" * 5
CLOSED = "https://127.0.0.1:9/x.git"  # port 9 (discard) on loopback: nothing listens, the connection is refused


def run_git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode().strip()


class Upstream:
    """A working repository and the bare server repository it pushes to."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.work = root / "work"
        self.server = root / "server.git"
        self.monkeypatch = monkeypatch
        self.clock = T0
        run_git("-c", "init.defaultBranch=main", "init", "-q", "--bare", str(self.server))
        run_git("-c", "init.defaultBranch=main", "init", "-q", str(self.work))
        self.git("remote", "add", "origin", str(self.server))

    def git(self, *args: str, input: bytes | None = None) -> str:
        return run_git(*args, cwd=self.work, input=input)

    def tick(self) -> int:
        """Move the fixed clock on a minute; every commit made after this carries that date."""
        self.clock += 60
        self.monkeypatch.setenv("GIT_AUTHOR_DATE", f"@{self.clock} +0530")
        self.monkeypatch.setenv("GIT_COMMITTER_DATE", f"@{self.clock} -0800")
        return self.clock

    def commit(self, message: str) -> str:
        self.tick()
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def checkout(self, branch: str, start: str | None = None) -> None:
        if start is None:
            self.git("checkout", "-q", branch)
        else:
            self.git("checkout", "-q", "-B", branch, start)

    def merge(self, branch: str, message: str) -> str:
        self.tick()
        self.git("merge", "-q", "--no-ff", "-m", message, branch)
        return self.git("rev-parse", "HEAD")

    def push(self, *args: str) -> None:
        self.git("push", "-q", "origin", *args)


@pytest.fixture(autouse=True)
def git_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed identity and no global or system git configuration, for the tests' git and devlink's."""
    home = tmp_path / "home"
    home.mkdir()
    # devlink drops GIT_* variables from its git's environment, so HOME is what keeps ~/.gitconfig out
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name, value in {
        "GIT_AUTHOR_NAME": "Ada Lovelace",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Grace Hopper",
        "GIT_COMMITTER_EMAIL": "grace@example.com",
        "GIT_AUTHOR_DATE": f"@{T0} +0530",
        "GIT_COMMITTER_DATE": f"@{T0} -0800",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Upstream:
    return Upstream(tmp_path / "upstream", monkeypatch)


@pytest.fixture
def history(upstream: Upstream) -> dict[str, str]:
    """main: c1 - c2 - m (merge of feature); feature/ABC-3: c1 - c3; release: c2.

    c3 is on two branches (feature/ABC-3 and, through the merge, main).
    """
    c1 = upstream.commit("ABC-1 first")
    c2 = upstream.commit("ABC-2 second\n\nAlso touches DEF-1.")
    upstream.checkout("feature/ABC-3", c1)
    c3 = upstream.commit("ABC-3 work on the feature")
    upstream.checkout("main")
    m = upstream.merge("feature/ABC-3", "Merge branch 'feature/ABC-3'")
    upstream.git("branch", "release", c2)
    upstream.push("main", "feature/ABC-3", "release")
    return {"c1": c1, "c2": c2, "c3": c3, "m": m}


def mirror_of(upstream: Upstream, tmp_path: Path, *, location: str | None = None) -> Mirror:
    mirror = Mirror(tmp_path / "data" / "mirrors" / "1.git", location or str(upstream.server))
    mirror.clone()
    return mirror


def shas(commits: list[GitCommit]) -> list[str]:
    return [commit.sha for commit in commits]


# -- clone, branches, commits ------------------------------------------------------


def test_clone_records_every_branch(upstream: Upstream, history: dict[str, str], tmp_path: Path) -> None:
    mirror = mirror_of(upstream, tmp_path)
    assert mirror.exists() is True
    assert mirror.branches() == {"main": history["m"], "feature/ABC-3": history["c3"], "release": history["c2"]}


def test_commits_yields_every_reachable_commit_once_newest_first(
    upstream: Upstream, history: dict[str, str], tmp_path: Path
) -> None:
    mirror = mirror_of(upstream, tmp_path)
    heads = list(mirror.branches().values())
    commits = list(mirror.commits(heads, []))
    assert shas(commits) == [history["m"], history["c3"], history["c2"], history["c1"]]
    assert mirror.count(heads, []) == 4


def test_commits_are_decoded_in_full(upstream: Upstream, history: dict[str, str], tmp_path: Path) -> None:
    mirror = mirror_of(upstream, tmp_path)
    by_sha = {commit.sha: commit for commit in mirror.commits([history["m"]], [])}
    assert by_sha[history["m"]] == GitCommit(
        sha=history["m"],
        parents=(history["c2"], history["c3"]),
        author_name="Ada Lovelace",
        author_email="ada@example.com",
        authored_at=datetime.fromtimestamp(T0 + 240, UTC),
        author_tz=330,
        committer_name="Grace Hopper",
        committer_email="grace@example.com",
        committed_at=datetime.fromtimestamp(T0 + 240, UTC),
        message="Merge branch 'feature/ABC-3'",
    )
    assert by_sha[history["c2"]].message == "ABC-2 second\n\nAlso touches DEF-1."
    assert extract_keys(by_sha[history["c2"]].message) == ("ABC-2", "DEF-1")
    assert by_sha[history["c1"]].parents == ()


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        pytest.param(["m"], ["c2"], ["m", "c3"], id="exclude-main-line"),
        pytest.param(["m"], ["c3"], ["m", "c2"], id="exclude-feature"),
        pytest.param(["m"], ["m"], [], id="exclude-everything"),
        pytest.param(["c3", "c2"], ["c1"], ["c3", "c2"], id="two-heads"),
        pytest.param(["m", "c3", "c2"], [], ["m", "c3", "c2", "c1"], id="overlapping-heads-once"),
        pytest.param(["m"], [MISSING_SHA], ["m", "c3", "c2", "c1"], id="missing-exclude-ignored"),
        pytest.param(["m"], ["c2", MISSING_SHA], ["m", "c3"], id="missing-and-real-exclude"),
        pytest.param([], [], [], id="nothing"),
    ],
)
def test_commits_and_count_with_exclusions(
    upstream: Upstream,
    history: dict[str, str],
    tmp_path: Path,
    include: list[str],
    exclude: list[str],
    expected: list[str],
) -> None:
    mirror = mirror_of(upstream, tmp_path)
    include_shas = [history.get(name, name) for name in include]
    exclude_shas = [history.get(name, name) for name in exclude]
    assert shas(list(mirror.commits(include_shas, exclude_shas))) == [history[name] for name in expected]
    assert mirror.count(include_shas, exclude_shas) == len(expected)


def test_stopping_the_stream_early_is_clean(upstream: Upstream, history: dict[str, str], tmp_path: Path) -> None:
    mirror = mirror_of(upstream, tmp_path)
    stream = mirror.commits([history["m"]], [])
    assert next(stream).sha == history["m"]
    stream.close()
    assert shas(list(mirror.commits([history["m"]], []))) == [history[n] for n in ("m", "c3", "c2", "c1")]


def test_clone_follows_branches_only_from_the_location(
    upstream: Upstream, history: dict[str, str], tmp_path: Path
) -> None:
    mirror = mirror_of(upstream, tmp_path)
    assert mirror.git("config", "--get-all", "remote.origin.url") == f"{upstream.server}\n"
    assert mirror.git("config", "--get-all", "remote.origin.fetch") == "+refs/heads/*:refs/heads/*\n"
    assert mirror.git("config", "gc.auto") == "0\n"


def test_failed_clone_leaves_nothing_behind(tmp_path: Path) -> None:
    parent = tmp_path / "data" / "mirrors"
    mirror = Mirror(parent / "1.git", str(tmp_path / "no-such-repo"))
    with pytest.raises(GitError):
        mirror.clone()
    assert mirror.exists() is False
    assert list(parent.iterdir()) == []


# -- fetch: branches follow the remote ----------------------------------------------


def test_fetch_follows_new_moved_deleted_and_force_pushed_branches(
    upstream: Upstream, history: dict[str, str], tmp_path: Path
) -> None:
    upstream.git("branch", "gone", history["c1"])
    upstream.push("gone")
    mirror = mirror_of(upstream, tmp_path)
    before = mirror.branches()
    assert before == {
        "main": history["m"], "feature/ABC-3": history["c3"], "release": history["c2"], "gone": history["c1"],
    }

    c4 = upstream.commit("ABC-4 on main")  # main moves on
    upstream.push("main")
    upstream.checkout("hotfix/DEF-1", history["c2"])  # a new branch
    c5 = upstream.commit("DEF-1 hotfix")
    upstream.push("hotfix/DEF-1")
    upstream.push("--delete", "gone")  # a deleted branch
    upstream.checkout("feature/ABC-3", history["c1"])  # a rewritten branch
    c6 = upstream.commit("ABC-3 rewritten")
    upstream.push("--force", "feature/ABC-3")

    mirror.fetch()
    after = mirror.branches()
    assert after == {"main": c4, "feature/ABC-3": c6, "release": history["c2"], "hotfix/DEF-1": c5}
    assert shas(list(mirror.commits(after.values(), before.values()))) == [c6, c5, c4]
    assert mirror.count(after.values(), before.values()) == 3
    # the commit the force-push replaced stays readable in the mirror
    assert shas(list(mirror.commits([history["c3"]], [history["c1"]]))) == [history["c3"]]

    mirror.fetch(str(upstream.server))  # nothing new: nothing changes
    assert mirror.branches() == after


def test_fetch_after_the_default_branch_is_deleted(
    upstream: Upstream, history: dict[str, str], tmp_path: Path
) -> None:
    mirror = mirror_of(upstream, tmp_path)
    run_git("--git-dir", str(upstream.server), "symbolic-ref", "HEAD", "refs/heads/release")
    upstream.push("--delete", "feature/ABC-3", "main")
    mirror.fetch()
    assert mirror.branches() == {"release": history["c2"]}


# -- odd commits ------------------------------------------------------------------


@pytest.fixture
def odd_history(upstream: Upstream, history: dict[str, str]) -> dict[str, str]:
    """Commits git's porcelain would refuse or mangle, written straight into the server repository."""
    server = str(upstream.server)
    raw = (
        f"tree {EMPTY_TREE}\nparent {history['m']}\n".encode()
        + b"author Bj\xf6rn \xff <bjorn@example.com> 1700000600 +0100\n"
        + b"committer Grace Hopper <grace@example.com> 1700000600 +0100\n"
        + b"\n"
        + b"ABC-9 odd \xff\xfe bytes\x00 and a NUL\n\nbody DEF-9\n"
    )
    literal = run_git("--git-dir", server, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=raw)
    # (``git commit-tree`` would re-encode invalid UTF-8 as Latin-1, so this one is written literally too)
    invalid_raw = (
        f"tree {EMPTY_TREE}\nparent {literal}\n".encode()
        + f"author Ada Lovelace <ada@example.com> {T0 + 1200} +0000\n".encode()
        + f"committer Grace Hopper <grace@example.com> {T0 + 1200} +0000\n".encode()
        + b"\nGHI-1 caf\xe9 \xc3\x28\n"
    )
    invalid = run_git(
        "--git-dir", server, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=invalid_raw
    )
    upstream.monkeypatch.setenv("GIT_COMMITTER_DATE", f"@{T0 + 1200} +0000")
    upstream.monkeypatch.setenv("GIT_AUTHOR_DATE", f"@{T0 + 1200} +0000")
    latin1 = run_git(
        "--git-dir", server, "-c", "i18n.commitEncoding=ISO-8859-1", "commit-tree", EMPTY_TREE, "-p", invalid,
        input="JKL-2 café naïve\n".encode("latin-1"),
    )
    run_git("--git-dir", server, "update-ref", "refs/heads/odd", latin1)
    stored = subprocess.run(["git", "--git-dir", server, "cat-file", "commit", latin1], capture_output=True, check=True)
    assert b"\nencoding ISO-8859-1\n" in stored.stdout  # git kept the Latin-1 bytes and said so
    return {"literal": literal, "invalid": invalid, "latin1": latin1}


def test_odd_commits_stream_without_error(
    upstream: Upstream, history: dict[str, str], odd_history: dict[str, str], tmp_path: Path
) -> None:
    mirror = mirror_of(upstream, tmp_path)
    commits = list(mirror.commits(mirror.branches().values(), []))
    assert shas(commits) == [
        odd_history["latin1"], odd_history["invalid"], odd_history["literal"],
        history["m"], history["c3"], history["c2"], history["c1"],
    ]
    latin1, invalid, literal = commits[:3]
    assert literal == GitCommit(
        sha=odd_history["literal"],
        parents=(history["m"],),
        author_name="Bj\ufffdrn \ufffd",
        author_email="bjorn@example.com",
        authored_at=datetime.fromtimestamp(1_700_000_600, UTC),
        author_tz=60,
        committer_name="Grace Hopper",
        committer_email="grace@example.com",
        committed_at=datetime.fromtimestamp(1_700_000_600, UTC),
        message="ABC-9 odd \ufffd\ufffd bytes\ufffd and a NUL\n\nbody DEF-9",
    )
    assert invalid.message == "GHI-1 caf\ufffd \ufffd("
    assert latin1.message == "JKL-2 café naïve"
    assert [extract_keys(commit.message) for commit in commits[:3]] == [("JKL-2",), ("GHI-1",), ("ABC-9", "DEF-9")]


def test_partial_clone_of_a_file_url(
    upstream: Upstream, history: dict[str, str], odd_history: dict[str, str], tmp_path: Path
) -> None:
    run_git("--git-dir", str(upstream.server), "config", "uploadpack.allowFilter", "true")
    url = upstream.server.as_uri()
    mirror = Mirror(tmp_path / "data" / "mirrors" / "1.git", url)
    mirror.clone(partial=True)  # the server advertises "filter": a partial clone
    assert mirror.git("config", "remote.origin.partialclonefilter") == "blob:none\n"
    heads = mirror.branches()
    assert heads == {
        "main": history["m"], "feature/ABC-3": history["c3"], "release": history["c2"], "odd": odd_history["latin1"],
    }
    assert mirror.count(heads.values(), []) == 7
    assert len({commit.sha for commit in mirror.commits(heads.values(), [])}) == 7

    c4 = upstream.commit("ABC-4 after the partial clone")
    upstream.push("main")
    mirror.fetch()
    assert shas(list(mirror.commits([mirror.branches()["main"]], [history["m"]]))) == [c4]


@pytest.mark.parametrize("protocol", ["2", "0"])
def test_a_partial_clone_only_where_the_server_can_filter(
    upstream: Upstream, history: dict[str, str], tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no uploadpack.allowFilter: a full clone, in both protocol versions (v0 lists capabilities after a NUL)
    run_git("--git-dir", str(upstream.server), "config", "protocol.version", protocol)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".gitconfig").write_text(f"[protocol]\n\tversion = {protocol}\n")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL")
    url = upstream.server.as_uri()
    mirror = Mirror(tmp_path / "data" / "mirrors" / "1.git", url)
    mirror.clone(partial=True)
    assert "partialclonefilter" not in (mirror.path / "config").read_text()
    assert mirror.branches()["main"] == history["m"]
    run_git("--git-dir", str(upstream.server), "config", "uploadpack.allowFilter", "true")
    partial = Mirror(tmp_path / "data" / "mirrors" / "2.git", url)
    partial.clone(partial=True)
    assert partial.git("config", "remote.origin.partialclonefilter") == "blob:none\n"


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_clone_of_a_directory_that_is_not_a_repository(tmp_path: Path, as_url: bool) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "README").write_text("not a repository\n")
    source = plain.as_uri() if as_url else str(plain)
    mirror = Mirror(tmp_path / "data" / "mirrors" / "1.git", source)
    with pytest.raises(GitError) as caught:
        mirror.clone()
    assert (caught.value.reason, caught.value.message) == ("not_a_repository", f"{source} is not a git repository")
    assert mirror.exists() is False


def test_check_remote_of_a_directory_that_is_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError) as caught:
        check_remote(str(plain))
    assert (caught.value.reason, caught.value.message) == ("not_a_repository", f"{plain} is not a git repository")


def test_check_remote_of_a_repository_passes(upstream: Upstream, history: dict[str, str]) -> None:
    assert check_remote(str(upstream.server)) is None


def test_check_remote_unreachable_does_not_show_credentials() -> None:
    with pytest.raises(GitError) as caught:
        check_remote(CLOSED, RemoteAccess("user", "secret"))
    error = caught.value
    assert error.reason == "unreachable"
    assert error.message.startswith(f"{CLOSED} is unreachable: ")
    for shown in (error.message, str(error), error.hint or "", repr(error)):
        assert "secret" not in shown
        assert "user:" not in shown


def test_reading_a_mirror_that_does_not_exist(tmp_path: Path) -> None:
    mirror = Mirror(tmp_path / "missing.git", "somewhere")
    assert mirror.exists() is False
    with pytest.raises(GitError) as caught:
        list(mirror.commits([MISSING_SHA], []))
    assert caught.value.reason == "not_a_repository"
    with pytest.raises(GitError) as caught:
        mirror.count([MISSING_SHA], [])
    assert caught.value.reason == "not_a_repository"


def test_an_ssh_failure_names_its_cause() -> None:
    from devlink.hosts.git import _classify

    stderr = (
        "ssh: connect to host 127.0.0.1 port 22: Connection refused\n"
        "fatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\nand the repository exists.\n"
    )
    error = _classify(stderr, "git@127.0.0.1:team/app.git")
    assert (error.reason, error.message) == (
        "unreachable",
        "git@127.0.0.1:team/app.git is unreachable: ssh: connect to host 127.0.0.1 port 22: Connection refused",
    )
