"""Read a repository over the git protocol: a bare mirror per repository, streamed commits.

Why git and not an API: no quota, the full history, and speed.  A mirror is a
bare clone (partial, ``--filter=blob:none``, for remotes: devlink never reads
file contents) whose branches follow the remote's with ``fetch --prune``.

Commits are read as raw objects from ``git rev-list | git cat-file --batch``:
each object arrives with its exact size, so a message holding NUL bytes or
invalid UTF-8 cannot desynchronise the stream, and memory stays flat because
objects are parsed one at a time.

Credentials never touch disk here: the mirror's configured URL is the redacted
one, and the commands that talk to the remote get the full URL through
``GIT_CONFIG_*`` environment variables (``url.<full>.insteadOf=<redacted>``),
never on a command line.  Every message that leaves this module goes through
``redact_text``.
"""

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, NamedTuple

from devlink.domain.remotes import redact_text
from devlink.errors import GitError

__all__ = ["GitCommit", "Mirror", "check_remote"]

NETWORK_TIMEOUT = 3600  # seconds a clone or fetch may take before it counts as hung
_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for a password on a terminal
    "GIT_ASKPASS": "true",  # nor in a GUI prompt: answer empty
    "SSH_ASKPASS": "true",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=30",
    "LC_ALL": "C",  # English messages, which _classify reads
    "GIT_CONFIG_NOSYSTEM": "1",
}
_NETWORK_OPTIONS = ["-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime=120", "-c", "credential.helper="]


class GitCommit(NamedTuple):
    """One commit, decoded: text fields are ``str`` safe for any database (no NUL, valid UTF-8).

    Immutable, like the frozen dataclass it replaces; a named tuple because a
    backfill builds one per commit and a tuple is built several times faster.
    """

    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    authored_at: datetime
    author_tz: int
    committer_name: str
    committer_email: str
    committed_at: datetime
    message: str


def _git_env(url: str | None = None, location: str | None = None) -> dict[str, str]:
    """The environment of every git call; with ``url`` (credentials inside), how git reaches ``location``.

    The credentials travel as ``url.<url>.insteadOf=<location>`` in ``GIT_CONFIG_*``
    variables: git rewrites the stored, redacted location to the real URL in
    memory, the secret is not in any command line (``ps``) or file, and the
    mirror keeps ``origin`` as its partial-clone promisor remote.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_ENV)
    if url and location and url != location:
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0=f"url.{url}.insteadOf", GIT_CONFIG_VALUE_0=location)
    return env


def _classify(stderr: str, location: str) -> GitError:
    """Turn git's stderr into a GitError with a reason a user can act on."""
    text = redact_text(stderr.strip())
    lower = text.lower()
    last = _cause(text)
    if any(s in lower for s in ("not a git repository", "does not appear to be a git repository",
                                "fatal: repository '/")) or ("does not exist" in lower and "://" not in location):
        return GitError(f"{location} is not a git repository", reason="not_a_repository")
    if "repository" in lower and "not found" in lower:
        return GitError(f"repository {location} was not found: {last}", reason="not_found")
    if any(s in lower for s in ("authentication failed", "could not read username", "could not read password",
                                "permission denied", "returned error: 401", "returned error: 403")):
        return GitError(f"{location}: access denied ({last})", reason="auth",
                        hint="check the credentials in the URL or the deploy key")
    if any(s in lower for s in ("could not resolve host", "connection refused", "failed to connect",
                                "unable to access", "connection timed out", "network is unreachable",
                                "could not read from remote repository", "operation timed out")):
        return GitError(f"{location} is unreachable: {last}", reason="unreachable")
    if "unable to find remote helper" in lower or ("invalid" in lower and "url" in lower):
        return GitError(f"{location} is not a valid repository URL: {last}", reason="bad_url")
    return GitError(f"git failed for {location}: {last}", reason="git")


def _cause(text: str) -> str:
    """The line of git's stderr that says why: ssh's own line, else the first ``fatal:``/``error:``, else the last."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for prefix in ("ssh:", "fatal:", "error:"):
        for line in lines:
            if line.lower().startswith(prefix):
                return line
    return lines[-1] if lines else "git failed without a message"


def _run(
    args: list[str], *, location: str, cwd: Path | None = None, timeout: float = 600, url: str | None = None
) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=_git_env(url, location), capture_output=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git gave no answer for {location} within {timeout:.0f} s", reason="unreachable") from None
    except FileNotFoundError:
        raise GitError("the git command is not installed", reason="git", hint="install git") from None
    if done.returncode != 0:
        raise _classify(done.stderr.decode("utf-8", "replace"), location)
    return done.stdout.decode("utf-8", "replace")


def check_remote(url: str, location: str) -> None:
    """Fail fast with a clear GitError if ``url`` cannot be listed (wrong path, host down, no access)."""
    _run([*_NETWORK_OPTIONS, "ls-remote", "--heads", location], location=location, timeout=120, url=url)


class Mirror:
    """The bare mirror of one repository under the data directory."""

    def __init__(self, path: Path, location: str) -> None:
        self.path = path
        self.location = location  # redacted, for messages and the stored config

    def exists(self) -> bool:
        return (self.path / "HEAD").is_file()

    def git(self, *args: str, timeout: float = 600) -> str:
        return _run(["--git-dir", str(self.path), *args], location=self.location, timeout=timeout)

    def clone(self, url: str, *, partial: bool) -> None:
        """Create the mirror; atomic: a failed clone leaves nothing behind."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".clone-", dir=self.path.parent))
        target = scratch / "mirror.git"
        try:
            options = ["--filter=blob:none"] if partial else []
            _run([*_NETWORK_OPTIONS, "clone", "--bare", "--no-tags", "--quiet", *options, self.location, str(target)],
                 location=self.location, timeout=NETWORK_TIMEOUT, url=url)
            config = ["--git-dir", str(target), "config"]
            _run([*config, "remote.origin.url", self.location], location=self.location)
            _run([*config, "remote.origin.fetch", "+refs/heads/*:refs/heads/*"], location=self.location)
            _run([*config, "gc.auto", "0"], location=self.location)  # keep old tips readable
            if self.path.exists():
                shutil.rmtree(self.path)
            target.rename(self.path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def fetch(self, url: str) -> None:
        """Bring branches in line with the remote: new, moved, force-pushed and deleted."""
        _run(["--git-dir", str(self.path), *_NETWORK_OPTIONS, "fetch", "--prune", "--no-tags", "--quiet", "origin"],
             location=self.location, timeout=NETWORK_TIMEOUT, url=url)

    def branches(self) -> dict[str, str]:
        """Branch name → head sha, for every ``refs/heads/*``."""
        out = self.git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/")
        heads: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition(" ")
            heads[ref.removeprefix("refs/heads/")] = sha
        return heads

    def count(self, include: Iterable[str], exclude: Iterable[str]) -> int:
        """How many commits ``commits(include, exclude)`` will yield; cheap, for progress bars."""
        proc = self._rev_list(include, exclude, ["--count"], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        if proc.wait() != 0:
            raise _classify(err.decode("utf-8", "replace"), self.location)
        return int(out or b"0")

    def commits(
        self, include: Iterable[str], exclude: Iterable[str], *, topo_order: bool = False
    ) -> Iterator[GitCommit]:
        """Yield every commit reachable from ``include`` and not from ``exclude``, newest first.

        With ``topo_order`` no commit comes before any of its children (git's
        ``--topo-order``; git then walks everything before the first commit
        comes out, so the bulk backfill does without it).  Excluded ids that no
        longer exist (a force-push followed by a prune) are ignored; the
        caller's invariant is that everything reachable from them was indexed
        before.
        """
        rev_list = self._rev_list(include, exclude, ["--topo-order"] if topo_order else [], stdout=subprocess.PIPE)
        cat_file = subprocess.Popen(
            # --buffer: plain --batch flushes after every object, which costs more than git's own work
            ["git", "--git-dir", str(self.path), "cat-file", "--batch", "--buffer"],
            stdin=rev_list.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_git_env(),
            bufsize=1 << 20,
        )
        assert rev_list.stdout is not None and cat_file.stdout is not None
        _widen_pipe(rev_list.stdout.fileno())
        _widen_pipe(cat_file.stdout.fileno())
        _lower_priority(rev_list.pid)
        _lower_priority(cat_file.pid)
        rev_list.stdout.close()  # cat-file owns the read end now
        try:
            yield from _read_batch(cat_file.stdout)
        finally:
            cat_file.stdout.close()
            cat_file.kill()
            cat_file.wait()
            rev_list.kill()
            rev_list.wait()
            assert rev_list.stderr is not None
            err = rev_list.stderr.read().decode("utf-8", "replace")
            rev_list.stderr.close()
            if cat_file.stderr is not None:
                cat_file.stderr.close()
        if rev_list.returncode not in (0, -9):
            raise _classify(err, self.location)

    def _rev_list(
        self, include: Iterable[str], exclude: Iterable[str], extra: list[str], *, stdout: int
    ) -> "subprocess.Popen[bytes]":
        proc = subprocess.Popen(
            ["git", "--git-dir", str(self.path), "rev-list", *extra, "--ignore-missing", "--stdin"],
            stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE, env=_git_env(),
        )
        assert proc.stdin is not None
        lines = [sha for sha in include] + [f"^{sha}" for sha in exclude]
        # rev-list reads all of stdin before it writes anything, so this cannot deadlock; if it already
        # exited (a missing mirror), the write fails and its stderr, read by the caller, says why
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(("\n".join(lines) + "\n").encode())
            proc.stdin.close()
        return proc


def _lower_priority(pid: int) -> None:
    """Let git give way when it and the Python process that parses and stores its output compete for a CPU.

    git reads faster than devlink stores, so it does not need to win; the
    Python process is the pipeline's slowest stage.  POSIX only; elsewhere a no-op.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, pid, 10)


def _widen_pipe(fd: int) -> None:
    """Let git run ahead while the caller writes a batch to the database (Linux; elsewhere a no-op).

    A pipe holds 64 KiB by default, about a hundred commits: git would stall on
    every batch write.  1 MiB is the most an unprivileged process may ask for.
    """
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass


_PIPE_SIZE = 1 << 20


def _read_batch(stream: IO[bytes]) -> Iterator[GitCommit]:
    readline, read = stream.readline, stream.read
    while True:
        header = readline()
        if not header:
            return
        sha, kind, size = header.split()
        body = read(int(size) + 1)[:-1]  # the object, then a newline
        if kind == b"commit":
            yield parse_commit(sha.decode(), body)


def _decode(raw: bytes, encoding: str) -> str:
    if encoding == "utf-8":
        text = raw.decode("utf-8", "replace")
    else:
        try:
            text = raw.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            text = raw.decode("utf-8", "replace")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


_EPOCH = datetime.fromtimestamp(0, UTC)


def _ident(value: str) -> tuple[str, str, datetime, int]:
    """Parse ``Name <email> 1700000000 +0100``; a malformed identity yields empty fields, not an error."""
    lt, gt = value.find("<"), value.rfind(">")
    if lt < 0 or gt < lt:
        return value.strip(), "", _EPOCH, 0
    when, tz = _EPOCH, 0
    stamp, _, offset = value[gt + 1 :].strip().partition(" ")
    try:
        when = datetime.fromtimestamp(int(stamp), UTC)
        minutes = int(offset[-4:-2] or "0") * 60 + int(offset[-2:])
        tz = -minutes if offset.startswith("-") else minutes
    except (ValueError, OverflowError, OSError):
        pass
    return value[:lt].strip(), value[lt + 1 : gt].strip(), when, tz


#: The usual commit header: tree, parents, author and committer exactly as git writes them.
#: Headers after these (a signature, a merged tag) are fine unless they change the reading (see
#: ``parse_commit``); anything else (odd identities, say) takes ``_parse_any``.
_CANONICAL = re.compile(
    r"tree [^\n]*\n(?:parent ([^\n]*)\n((?:parent [^\n]*\n)*))?"
    r"author ([^<\n]*)<([^\n]*)> ([0-9]+) ([+-][0-9]{4})\n"
    r"committer ([^<\n]*)<([^\n]*)> ([0-9]+) ([+-][0-9]{4})(?=\n|\Z)"
)
_match_canonical = _CANONICAL.match
_new_commit = tuple.__new__
_from_stamp = datetime.fromtimestamp
_offsets: dict[str, int] = {}  # "+0530" -> 330, filled as offsets are met (at most 20,000)


def _offset_minutes(offset: str) -> int:
    minutes = int(offset[1:3]) * 60 + int(offset[3:])
    minutes = _offsets[offset] = -minutes if offset[0] == "-" else minutes
    return minutes


def parse_commit(sha: str, body: bytes) -> GitCommit:
    """Decode one raw commit object; never raises on odd bytes.

    The header is ASCII except for names; it is decoded with the commit's
    ``encoding`` header (UTF-8 when absent), like the message.

    A backfill spends much of its time here, so the usual commit (UTF-8, the
    header as git writes it, maybe signed) is decoded once and read with one
    regular expression; anything else goes through ``_parse_any``, which
    defines the result for any input and gives the same for these.
    """
    text = body.decode("utf-8", "replace")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    match = _match_canonical(text)
    if match is None:
        return _parse_any(sha, body)
    end = match.end()
    if text.startswith("\n\n", end):
        message = text[end + 2 :]
    else:  # more headers, or no message at all
        head_end = text.find("\n\n", end)
        more_headers = text[end:head_end] if head_end >= 0 else text[end:]
        if "\nparent " in more_headers or "\nencoding " in more_headers:
            return _parse_any(sha, body)
        message = text[head_end + 2 :] if head_end >= 0 else ""
    parent, more_parents, a_name, a_email, a_stamp, a_offset, c_name, c_email, c_stamp, _ = match.groups()
    try:
        authored_at = _from_stamp(int(a_stamp), UTC)
        committed_at = authored_at if c_stamp == a_stamp else _from_stamp(int(c_stamp), UTC)
    except (ValueError, OverflowError, OSError):
        return _parse_any(sha, body)
    if parent is None:
        parents: tuple[str, ...] = ()
    elif not more_parents:
        parents = (parent,)
    else:
        parents = (parent, *[line[7:] for line in more_parents[:-1].split("\n")])
    author_tz = _offsets.get(a_offset)
    if author_tz is None:
        author_tz = _offset_minutes(a_offset)
    return _new_commit(GitCommit, (
        sha, parents, a_name.strip(), a_email.strip(), authored_at, author_tz,
        c_name.strip(), c_email.strip(), committed_at, message.rstrip("\n"),
    ))


def _parse_any(sha: str, body: bytes) -> GitCommit:
    """``parse_commit`` for any commit object, however odd."""
    head_raw, _, message_raw = body.partition(b"\n\n")
    encoding = "utf-8"
    position = head_raw.find(b"\nencoding ")
    if position >= 0:
        encoding = head_raw[position + 10 :].split(b"\n", 1)[0].decode("ascii", "replace").strip().lower()
        if encoding in ("utf8", "utf-8"):
            encoding = "utf-8"
    parents: list[str] = []
    author = committer = ""
    for line in _decode(head_raw, encoding).split("\n"):
        if line.startswith("parent "):
            parents.append(line[7:])
        elif line.startswith("author ") and not author:
            author = line[7:]
        elif line.startswith("committer ") and not committer:
            committer = line[10:]
    a_name, a_email, a_when, a_tz = _ident(author)
    c_name, c_email, c_when, _ = _ident(committer)
    return GitCommit(
        sha=sha,
        parents=tuple(parents),
        author_name=a_name,
        author_email=a_email,
        authored_at=a_when,
        author_tz=a_tz,
        committer_name=c_name,
        committer_email=c_email,
        committed_at=c_when,
        message=_decode(message_raw, encoding).rstrip("\n"),
    )


