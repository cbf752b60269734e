"""Read a repository over the git protocol: a bare mirror per repository, streamed commits.

Why git and not an API: no quota, the full history, and speed.  A mirror is a
bare clone whose branches follow the remote's with ``fetch --prune``.  It is
partial (``--filter=blob:none``: devlink never reads file contents) only when
the server says it can filter; otherwise (dumb HTTP, a server without
``uploadpack.allowFilter``) it is a full clone, because git would otherwise
fetch missing objects one lazy fetch at a time, each spawning the next.

Commits are read as raw objects from ``git rev-list | git cat-file --batch``:
each object arrives with its exact size, so a message holding NUL bytes or
invalid UTF-8 cannot desynchronise the stream, and memory stays flat because
objects are parsed one at a time.

Every git command runs bounded: in its own process group (its own session),
with a time limit, and with lazy fetching off (``GIT_NO_LAZY_FETCH``).  When
the limit passes or the caller stops early, the whole group is killed, again
and again until it is empty, since a chain of git processes forks faster than
one ``killpg`` can catch it.  For the commands that talk to a remote, the
group's leader is a coreutils ``timeout`` that kills it a little later on its
own, should devlink itself be killed.

Credentials never touch a command line, an environment or a file, and git
inherits only an allow-list of devlink's environment (``_INHERITED``), so the
secrets a deployment keeps there do not reach git either.  The
location git is given is the redacted one; a credential helper, configured
through ``GIT_CONFIG_*`` for the remote's origin only, reads
``username=…/password=…`` from a FIFO in a private directory that a thread of
this process writes each time the helper opens it (``_CredentialPipe``).  The
host's CA bundle and proxy reach git the same way, scoped to the origin.
Every message that leaves this module goes through ``redact_text``.
"""

import contextlib
import functools
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, NamedTuple
from urllib.parse import unquote, urlsplit

from devlink.domain.remotes import redact_text
from devlink.errors import GitError

__all__ = ["GitCommit", "Mirror", "RemoteAccess", "check_remote", "inherited_environment", "ssh_key_fingerprint"]

# Time limits, in seconds; module constants so tests can lower them.
NETWORK_TIMEOUT = 3600.0  # a clone or fetch
LIST_TIMEOUT = 120.0  # ls-remote: checking a remote, probing what it supports
LOCAL_TIMEOUT = 600.0  # a command on the mirror alone
READ_TIMEOUT = 6 * 3600.0  # a commit stream, which the caller paces (a backfill of millions of commits)
KILL_TIMEOUT = 5.0  # how long to keep killing a process group that will not empty
# How long after its own limit the supervisor of a git command (coreutils ``timeout``) kills the group
# itself: only when devlink is not there to do it (killed with SIGKILL, out of memory).
SUPERVISOR_SLACK = 30.0

_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for a password on a terminal
    "GIT_ASKPASS": "true",  # nor in a GUI prompt: answer empty
    "SSH_ASKPASS": "true",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=30",
    "LC_ALL": "C",  # English messages, which _classify reads
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_NO_LAZY_FETCH": "1",  # a missing object is an error, never a fetch (that may fetch, that may fetch…)
}
# Every command: only the transports devlink accepts (no ext::, fd:: or other remote helper, whatever the
# location says), and no credential helper of the user's (the one devlink adds for an origin comes after).
_BASE_CONFIG: list[tuple[str, str]] = [
    ("protocol.allow", "never"),
    *[(f"protocol.{name}.allow", "always") for name in ("https", "http", "ssh", "git", "file")],
    ("credential.helper", ""),
]
_NETWORK_CONFIG: list[tuple[str, str]] = [("http.lowSpeedLimit", "1"), ("http.lowSpeedTime", "120")]


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


@dataclass(frozen=True)
class RemoteAccess:
    """What git needs besides the location to reach an HTTP(S) remote; none of it reaches a command line.

    ``username``/``password`` go through the credential FIFO; a bare token is a
    user name with an empty password.  ``ca_bundle`` and ``proxy`` (a host's
    settings) become ``http.<origin>.sslCAInfo`` / ``http.<origin>.proxy``;
    ``proxy`` None leaves git's usual proxy variables in charge, "" means none.
    """

    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    ca_bundle: str | None = None
    proxy: str | None = None

    @property
    def has_credential(self) -> bool:
        return bool(self.username or self.password)


# What git and ssh may inherit from devlink's environment, by name; nothing else passes.  devlink's own
# process holds secrets in its environment (DEVLINK_SECRET_KEY, a token, a database URL with a password),
# and a child's environment can be read from /proc for as long as it runs.
_INHERITED = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "LD_LIBRARY_PATH", "XDG_CONFIG_HOME",
    "SSH_AUTH_SOCK", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
})


_PROXY_VARIABLES = frozenset(name for name in _INHERITED
                             if name.lower().endswith("_proxy") and name.lower() != "no_proxy")


def inherited_environment() -> dict[str, str]:
    """The part of devlink's environment any git it starts may see (``_INHERITED``); demo.py uses it too.

    A proxy variable's password is taken out (git asks the credential helper
    for it, see ``_proxy_passwords``); its user name stays, which is what makes
    git ask.
    """
    env = {k: v for k, v in os.environ.items() if k in _INHERITED}
    for name in _PROXY_VARIABLES & env.keys():
        env[name] = _without_password(env[name])
    return env


def _split_proxy(value: str) -> tuple[str, str, str | None, str] | None:
    """(scheme, user, password or None, host[:port]) of a proxy variable, or None when it names no host.

    The authority runs to the *last* ``@`` before the host, so a password
    holding ``/``, ``?``, ``#`` or ``@`` unencoded is still taken out whole
    (``urlsplit`` would end the authority at the first ``/`` and leave it in).
    """
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "http", text
    userinfo, at, tail = rest.rpartition("@")
    host = re.split(r"[/?#]", tail, maxsplit=1)[0]
    if not at:
        host, userinfo = re.split(r"[/?#]", rest, maxsplit=1)[0], ""
    if not host or host.startswith(":"):
        return None
    user, colon, password = userinfo.partition(":")
    return scheme.lower(), user, (password if colon else None), host.lower()


def _without_password(proxy: str) -> str:
    """``scheme://user@host:port`` of ``scheme://user:password@host:port`` (anything else unchanged).

    A value carrying a password devlink cannot place (no host after it) is
    dropped rather than handed on with the password in it.
    """
    if "@" not in proxy:
        return proxy
    parts = _split_proxy(proxy)
    if parts is None:
        return ""
    scheme, user, password, host = parts
    if password is None:
        return proxy
    return f"{scheme}://{user}@{host}"


def _proxy_passwords() -> dict[str, tuple[str, str]]:
    """Proxy origin → (user, password) for the proxy variables in devlink's environment that carry a password."""
    found: dict[str, tuple[str, str]] = {}
    for name in sorted(_PROXY_VARIABLES & os.environ.keys()):
        parts = _split_proxy(os.environ[name])
        if parts is None:
            continue
        scheme, user, password, host = parts
        if user and password is not None:  # never an origin without a host: "http://" matches every host
            found[f"{scheme}://{host}"] = (unquote(user), unquote(password))
    return found


def _git_env(config: Sequence[tuple[str, str]] = (), extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every git call: an allow-list of the inherited one, devlink's settings, ``config``.

    An allow-list rather than a deny-list because the secrets a deployment
    keeps in its environment have names devlink cannot know in advance.
    """
    env = inherited_environment()
    env.update(_ENV)
    pairs = [*_BASE_CONFIG, *config]
    env["GIT_CONFIG_COUNT"] = str(len(pairs))
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env.update(extra or {})
    return env


def _origin(location: str) -> str | None:
    """``scheme://host[:port]`` of an HTTP(S) location (what git's ``http.<url>.*`` matches); None otherwise."""
    if not location.lower().startswith(("http://", "https://")):
        return None
    parts = urlsplit(location)
    return f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}"


class _CredentialPipe:
    """Hands ``username=…/password=…`` to git's credential helper through a FIFO, from memory, at each open.

    The FIFO sits in a private (0700) directory; the helper is ``cat`` of it, so
    the secret is in no argv, environment or file, only in the pipe while git
    reads it.  A daemon thread blocks opening the FIFO for writing until a
    reader comes, writes, closes, and waits for the next one.
    """

    def __init__(self, username: str, password: str) -> None:
        self._payload = f"username={username}\npassword={password}\n".encode()
        self._directory = tempfile.mkdtemp(prefix="devlink-credential-")
        self.path = os.path.join(self._directory, "fifo")
        os.mkfifo(self.path, 0o600)
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="git-credential", daemon=True)
        self._thread.start()

    def helper(self) -> str:
        """The helper command: answers ``get`` only (``store`` and ``erase`` are no-ops)."""
        return f'!f() {{ test "$1" = get && cat {shlex.quote(self.path)}; }}; f'

    def _serve(self) -> None:
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY)  # blocks until the helper (or close) opens the other end
            except OSError:
                return
            try:
                if self._closing:
                    return
                view = memoryview(self._payload)
                while view:
                    view = view[os.write(fd, view):]
            except OSError:  # the reader went away early
                pass
            finally:
                os.close(fd)

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            reader = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # held open: the writer's open returns
            try:
                self._thread.join(timeout=KILL_TIMEOUT)
            finally:
                os.close(reader)
        shutil.rmtree(self._directory, ignore_errors=True)


@contextlib.contextmanager
def _remote_config(location: str, access: RemoteAccess | None) -> Iterator[list[tuple[str, str]]]:
    """The ``GIT_CONFIG_*`` pairs for a command that talks to ``location``, with the credential pipes open.

    One pipe for the remote's credential, scoped to its origin, and one per
    proxy of devlink's environment that needs a password, scoped to the proxy.
    """
    config = list(_NETWORK_CONFIG)
    origin = _origin(location)
    secrets: dict[str, tuple[str, str]] = {}
    if origin is not None:  # HTTP(S): the proxy variables apply
        secrets.update(_proxy_passwords())
    if access is not None and origin is not None:  # ssh, git://, paths: the user's keys, or nothing
        if access.ca_bundle:
            config.append((f"http.{origin}.sslCAInfo", access.ca_bundle))
        if access.proxy is not None:
            if "@" in urlsplit(access.proxy).netloc:
                raise GitError(
                    "the host's proxy URL carries credentials, which devlink does not hand to git", reason="bad_url",
                    hint="use a proxy that needs no password for git, or set it without credentials",
                )
            config.append((f"http.{origin}.proxy", access.proxy))
        if access.has_credential:
            secrets[origin] = (access.username, access.password)
    with contextlib.ExitStack() as pipes:
        for scope, (username, password) in secrets.items():
            pipe = _CredentialPipe(username, password)
            pipes.callback(pipe.close)
            config.append((f"credential.{scope}.helper", pipe.helper()))
        yield config


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
    if "returned error: 407" in lower or "response 407" in lower or "407 from proxy" in lower:
        return GitError(f"{location}: the proxy refused the request ({last})", reason="auth",
                        hint="check the user and password of the proxy (the http_proxy / https_proxy variables)")
    if any(s in lower for s in ("authentication failed", "could not read username", "could not read password",
                                "permission denied", "returned error: 401", "returned error: 403")):
        return GitError(f"{location}: access denied ({last})", reason="auth",
                        hint="check the credentials in the URL or the deploy key")
    if any(s in lower for s in ("could not resolve host", "connection refused", "failed to connect",
                                "unable to access", "connection timed out", "network is unreachable",
                                "could not read from remote repository", "operation timed out")):
        return GitError(f"{location} is unreachable: {last}", reason="unreachable")
    if "unable to find remote helper" in lower or ("transport" in lower and "not allowed" in lower) or (
            "invalid" in lower and "url" in lower):
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


# -- bounded processes --------------------------------------------------------------


@functools.cache
def _supervisor() -> str | None:
    """GNU coreutils ``timeout``, where installed; elsewhere the limit holds only while devlink runs.

    Not BusyBox's (Alpine): it moves its watcher into a session of its own and
    at the limit kills git's first process only, leaving ``git-remote-http`` running.
    """
    path = shutil.which("timeout")
    if path is None:
        return None
    try:
        version = subprocess.run([path, "--version"], capture_output=True, timeout=10, env={"LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if b"GNU coreutils" in version else None


def _spawn(args: list[str], env: dict[str, str], *, cwd: Path | None = None, stdin: int | IO[bytes] | None,
           bufsize: int = -1, supervise: float | None = None, program: str = "git") -> "subprocess.Popen[bytes]":
    """Start git in a session and process group of its own, so all it starts can be killed at once.

    devlink enforces every time limit itself.  ``supervise`` (the limit of a
    command that talks to a remote, which can hang or fork remote helpers)
    puts a ``timeout`` supervisor at the group's head that SIGKILLs the whole
    group ``SUPERVISOR_SLACK`` seconds after it, so it stays bounded even when
    devlink dies without cleaning up.  Commands on the mirror alone do without
    its exec (about 2 ms each): they end with their work, or of SIGPIPE once
    devlink stops reading them.  ``program``: another tool git relies on
    (``ssh-keygen``), run the same way.
    """
    supervisor = _supervisor() if supervise is not None else None
    command = [program, *args]
    if supervisor:
        if shutil.which("git", path=env.get("PATH")) is None:  # else the supervisor's exit 127 reads as git's
            raise GitError("the git command is not installed", reason="git", hint="install git")
        # whole seconds, rounded up and at least 1: to timeout, "0s" means no limit at all
        assert supervise is not None
        command = [supervisor, "-s", "KILL", f"{max(1, math.ceil(supervise + SUPERVISOR_SLACK))}s", *command]
    try:
        return subprocess.Popen(command, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, bufsize=bufsize)
    except FileNotFoundError:
        if program != "git":
            raise GitError(f"the {program} command is not installed", reason="git",
                           hint=_INSTALL.get(program)) from None
        raise GitError("the git command is not installed", reason="git", hint="install git") from None


_INSTALL = {"ssh-keygen": "install OpenSSH's client tools (Debian: apt-get install openssh-client)"}


def _group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies do not count); True where /proc is missing."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    """SIGKILL ``proc``'s whole process group until it is empty (or only zombies are left), and reap ``proc``.

    One ``killpg`` may miss a process forked while it ran, so it repeats.  The
    group id cannot be reused while any member, or the unreaped leader, exists;
    a leader reaped before (a command that finished) is left alone for that reason.
    """
    if proc.returncode is not None:
        return
    deadline = time.monotonic() + KILL_TIMEOUT
    while True:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            break
        proc.poll()  # reap the leader once it is dead
        if not _group_alive(proc.pid) or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_TIMEOUT)


def _run(
    args: list[str], *, location: str, cwd: Path | None = None, timeout: float = LOCAL_TIMEOUT,
    config: Sequence[tuple[str, str]] = (), extra_env: dict[str, str] | None = None, input: bytes | None = None,
    network: bool = False, program: str = "git",
) -> str:
    """Run one git command bounded: its own process group, killed whole at ``timeout`` or if the caller is stopped."""
    proc = _spawn(args, _git_env(config, extra_env), cwd=cwd, supervise=timeout if network else None,
                  stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, program=program)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        _drain(proc)
        if network:
            raise GitError(f"git gave no answer for {location} within {timeout:g} s", reason="unreachable") from None
        raise GitError(f"git took longer than {timeout:g} s for {location}", reason="git") from None
    except BaseException:  # interrupted (Ctrl-C, a worker shutting down): leave nothing running
        _kill_group(proc)
        _drain(proc)
        raise
    if proc.returncode != 0:
        if program != "git":
            raise GitError(f"{program} failed for {location}: {_cause(err.decode('utf-8', 'replace'))}",
                           reason="git")
        raise _classify(err.decode("utf-8", "replace"), location)
    return out.decode("utf-8", "replace")


def _drain(proc: "subprocess.Popen[bytes]") -> None:
    """Close a killed process's pipes without waiting on anything that escaped its group."""
    try:
        proc.communicate(timeout=1)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def check_remote(location: str, access: RemoteAccess | None = None, *, shown: str | None = None) -> None:
    """Fail fast with a clear GitError if ``location`` cannot be listed (wrong path, host down, no access).

    ``shown`` is how errors name the location (as the user gave it), when it differs from ``location``.
    """
    with _remote_config(location, access) as config:
        _run(["ls-remote", "--heads", "--", location], location=shown or location, timeout=LIST_TIMEOUT,
             config=config, network=True)


# capabilities in GIT_TRACE_PACKET's lines of what git received: protocol v2 sends "fetch=<features>",
# v0 puts them after a NUL (traced as "\0") on the first ref line
_RECEIVED = re.compile(r"packet:\s+\S+< (.*)$")


def advertises_filter(location: str, access: RemoteAccess | None = None) -> bool:
    """Whether the server at ``location`` can filter objects (a partial clone will work); dumb HTTP cannot."""
    with tempfile.TemporaryDirectory(prefix="devlink-probe-") as scratch, \
            _remote_config(location, access) as config:
        trace = Path(scratch) / "packets"
        _run(["ls-remote", "--heads", "--", location], location=location, timeout=LIST_TIMEOUT, config=config,
             extra_env={"GIT_TRACE_PACKET": str(trace)}, network=True)
        if not trace.exists():
            return False
        with trace.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                received = _RECEIVED.search(line.rstrip("\n"))
                if received is None:
                    continue
                payload = received.group(1)
                if payload.startswith("fetch="):
                    return "filter" in payload[len("fetch="):].split()
                if "\\0" in payload:
                    return "filter" in payload.split("\\0", 1)[1].split()
    return False


class Mirror:
    """The bare mirror of one repository under the data directory."""

    def __init__(self, path: Path, location: str) -> None:
        self.path = path
        self.location = location  # redacted: what git is given, what messages name, what the config stores

    def exists(self) -> bool:
        return (self.path / "HEAD").is_file()

    def git(self, *args: str, timeout: float = LOCAL_TIMEOUT) -> str:
        return _run(["--git-dir", str(self.path), *args], location=self.location, timeout=timeout)

    def clone(self, access: RemoteAccess | None = None, *, partial: bool = False) -> None:
        """Create the mirror; atomic: a failed clone leaves nothing behind.

        ``partial``: leave blobs out if the server can filter them; otherwise the clone is full.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".clone-", dir=self.path.parent))
        target = scratch / "mirror.git"
        try:
            options = ["--filter=blob:none"] if partial and advertises_filter(self.location, access) else []
            with _remote_config(self.location, access) as config:
                _run(["clone", "--bare", "--no-tags", "--quiet", *options, "--", self.location, str(target)],
                     location=self.location, timeout=NETWORK_TIMEOUT, config=config, network=True)
            git_config = ["--git-dir", str(target), "config"]
            _run([*git_config, "remote.origin.url", self.location], location=self.location)
            _run([*git_config, "remote.origin.fetch", "+refs/heads/*:refs/heads/*"], location=self.location)
            _run([*git_config, "gc.auto", "0"], location=self.location)  # keep old tips readable
            if self.path.exists():
                shutil.rmtree(self.path)
            target.rename(self.path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def fetch(self, access: RemoteAccess | None = None) -> None:
        """Bring branches in line with the remote: new, moved, force-pushed and deleted."""
        with _remote_config(self.location, access) as config:
            _run(["--git-dir", str(self.path), "fetch", "--prune", "--no-tags", "--quiet", "origin"],
                 location=self.location, timeout=NETWORK_TIMEOUT, config=config, network=True)

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
        out = _run(["--git-dir", str(self.path), "rev-list", "--count", "--ignore-missing", "--stdin"],
                   location=self.location, input=_rev_lines(include, exclude))
        return int(out.strip() or "0")

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

        Both processes run in their own process groups, killed whole when the
        caller stops early or after ``READ_TIMEOUT`` (a GitError then, never a
        silently short stream).
        """
        env = _git_env()
        order = ["--topo-order"] if topo_order else []
        rev_list = _spawn(["--git-dir", str(self.path), "rev-list", *order, "--ignore-missing", "--stdin"], env,
                          stdin=subprocess.PIPE)
        assert rev_list.stdin is not None and rev_list.stdout is not None and rev_list.stderr is not None
        try:
            # --buffer: plain --batch flushes after every object, which costs more than git's own work
            cat_file = _spawn(["--git-dir", str(self.path), "cat-file", "--batch", "--buffer"], env,
                              stdin=rev_list.stdout, bufsize=1 << 20)
        except BaseException:
            _kill_group(rev_list)
            raise
        assert cat_file.stdout is not None
        expired = threading.Event()

        def expire() -> None:
            if cat_file.poll() is None or rev_list.poll() is None:  # git itself is late, not just the caller
                expired.set()
                _kill_group(cat_file)
                _kill_group(rev_list)

        timer = threading.Timer(READ_TIMEOUT, expire)
        timer.daemon = True
        timer.start()
        try:
            _widen_pipe(rev_list.stdout.fileno())
            _widen_pipe(cat_file.stdout.fileno())
            _lower_priority(rev_list.pid)
            _lower_priority(cat_file.pid)
            rev_list.stdout.close()  # cat-file owns the read end now
            # rev-list reads all of stdin before it writes anything, so this cannot deadlock; if it already
            # exited (a missing mirror), the write fails and its stderr, read below, says why
            with contextlib.suppress(BrokenPipeError):
                rev_list.stdin.write(_rev_lines(include, exclude))
                rev_list.stdin.close()
            try:
                yield from _read_batch(cat_file.stdout)
            except ValueError:  # a batch cut short: cat-file was killed at the time limit
                if not expired.is_set():
                    raise
            rev_list.wait()
        finally:
            timer.cancel()
            cat_file.stdout.close()
            _kill_group(cat_file)
            _kill_group(rev_list)
            err = rev_list.stderr.read().decode("utf-8", "replace")
            for stream in (rev_list.stdin, rev_list.stderr, cat_file.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if expired.is_set():
            raise GitError(f"reading commits of {self.location} took longer than {READ_TIMEOUT:g} s", reason="git")
        if rev_list.returncode != 0:
            raise _classify(err, self.location)


    def signatures(self, shas: Sequence[str], allowed_signers: Path) -> dict[str, tuple[str, str]]:
        """sha → (git's ``%G?`` status, the principal of ``allowed_signers`` that signed) for each commit found.

        Only SSH signatures can be good: git checks them with ``ssh-keygen``
        against ``allowed_signers`` (``gpg.ssh.allowedSignersFile``); the GPG and
        X.509 programs are set to ones that do not exist, so those signatures
        are never good whatever keyrings the machine has.  ``G``: good, by a key
        of the file; ``U``: a good signature by a key the file does not list;
        ``N``: none; ``B``, ``E``…: bad, or not checkable.
        """
        if shutil.which("ssh-keygen", path=inherited_environment().get("PATH")) is None:
            raise GitError("the ssh-keygen command is not installed; git needs it to verify SSH signatures",
                           reason="git", hint=_INSTALL["ssh-keygen"])
        config = [("gpg.format", "ssh"), ("gpg.ssh.allowedSignersFile", str(allowed_signers)),
                  ("gpg.ssh.program", "ssh-keygen"), ("gpg.program", "/nonexistent/devlink-no-gpg"),
                  ("gpg.x509.program", "/nonexistent/devlink-no-gpgsm"), ("log.showSignature", "false")]
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(shas), 500):
            out = _run(["--git-dir", str(self.path), "log", "--no-walk=unsorted", "--ignore-missing", "--stdin",
                        "--format=%H%x00%G?%x00%GS"], location=self.location, config=config,
                       input="".join(f"{sha}\n" for sha in shas[start:start + 500]).encode())
            for line in out.splitlines():
                sha, _, rest = line.partition("\0")
                status, _, signer = rest.partition("\0")
                if sha:
                    found[sha] = (status or "N", signer)
        return found


def ssh_key_fingerprint(public_key: str) -> str:
    """The SHA-256 fingerprint (``SHA256:…``) ``ssh-keygen -l`` gives an OpenSSH public key line; GitError if it
    is not one (a private key is refused before ssh-keygen sees it)."""
    with tempfile.TemporaryDirectory(prefix="devlink-key-") as scratch:
        path = Path(scratch) / "key.pub"
        path.write_text(public_key + "\n", encoding="utf-8")
        out = _run(["-l", "-E", "sha256", "-f", str(path)], location="the public key", timeout=LIST_TIMEOUT,
                   program="ssh-keygen")
    parts = out.split()
    if len(parts) < 2 or not parts[1].startswith("SHA256:"):
        raise GitError("ssh-keygen gave no fingerprint for the public key", reason="git")
    return parts[1]


def _rev_lines(include: Iterable[str], exclude: Iterable[str]) -> bytes:
    lines = [sha for sha in include] + [f"^{sha}" for sha in exclude]
    return ("\n".join(lines) + "\n").encode()


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


