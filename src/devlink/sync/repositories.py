"""Link, find and unlink plain git repositories: the functions behind ``devlink repo`` and the REST API.

The CLI and the API call these and nothing lower, so both behave the same.
"""

import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from devlink.domain.remotes import is_http, parse_remote, split_userinfo
from devlink.errors import Conflict, GitError, InvalidInput, NotFound
from devlink.hosts.git import RemoteAccess, check_remote
from devlink.runtime import Runtime
from devlink.store.models import Host, IssueLink, Repository, utcnow
from devlink.sync.accounts import parse_row_id, unlink_repository
from devlink.sync.engine import mirror_for

__all__ = [
    "add_repository",
    "find_repository",
    "hook_token",
    "remove_repository",
    "repository_for_token",
    "set_smart_commits",
    "token_hash",
]

GIT_HOST = "git"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")  # whole name: fullmatch (``$`` admits a final newline)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _git_host(session: Session) -> Host:
    host = session.scalars(select(Host).where(Host.name == GIT_HOST)).first()
    if host is None:
        host = Host(kind="git", name=GIT_HOST)
        session.add(host)
        session.flush()
    return host


def _default_name(location: str) -> str:
    tail = location.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    tail = tail.removesuffix(".git") or "repository"
    return re.sub(r"[^A-Za-z0-9._-]", "-", tail).strip("-.") or "repository"


#: trees no repository lives in; /proc/self/cwd and friends would also tell where the server runs
_SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


def _normalise_location(text: str, cwd: Path | None, private: tuple[Path, ...] = (),
                        roots: tuple[Path, ...] | None = None) -> tuple[str, str, str]:
    """(location to store and give git, its secret userinfo, how messages name it).

    A relative or ``~`` path needs ``cwd``, the caller's own working directory
    (the CLI's); without one (the REST API) it is refused, so no error ever
    names the server's working directory or home.  Messages about a path name
    it as given.  Paths inside ``private`` (devlink's mirrors, fetched with
    host credentials) or the system's virtual trees are refused; with
    ``roots`` (the API and pages), so is every path outside them, before
    anything tells whether it exists.
    """
    try:
        remote = parse_remote(text)
    except ValueError as exc:
        raise InvalidInput(f"invalid repository location: {exc}", reason="bad_url") from None
    if remote.is_url:
        return remote.location, remote.userinfo, remote.location
    given = remote.location
    path = Path(given)
    if not path.is_absolute():
        if cwd is None:
            raise InvalidInput(f"{given} is a relative path: give an absolute path", reason="bad_url",
                               hint="the server resolves no relative path or ~")
        path = cwd / path.expanduser()
    written, path = Path(os.path.normpath(path)), path.resolve()
    if any(where == root or root in where.parents for where in (written, path) for root in (*_SYSTEM_TREES, *private)):
        raise InvalidInput(f"{given} cannot be linked: it is inside the system's or devlink's own files",
                           reason="bad_url", hint="link the repository where your git server keeps it")
    if roots is not None and not any(root == path or root in path.parents for root in roots):
        raise InvalidInput(f"{given} cannot be linked here: local paths must be under DEVLINK_LOCAL_REPOSITORY_ROOTS"
                           + ("" if roots else ", which is empty"), reason="path_not_allowed",
                           hint="an admin on the server can set DEVLINK_LOCAL_REPOSITORY_ROOTS, or run: "
                           "devlink repo add PATH")
    if not path.exists():
        # over the API, "missing" and "not a repository" read the same: no answer tells what exists on the server
        message = f"{given} does not exist" if cwd is not None else f"{given} is not a git repository"
        raise GitError(message, reason="not_a_repository")
    if path.name == ".git" and path.is_dir():  # a work tree's own git directory is that work tree's repository
        path = path.parent
    return str(path), "", given


def add_repository(
    rt: Runtime, location: str, *, name: str | None = None, web_url: str | None = None, smart_commits: bool = True,
    cwd: Path | None = None, local_roots: tuple[Path, ...] | None = None,
) -> Repository:
    """Check that ``location`` is a readable git repository and link it; no sync is started here.

    ``cwd`` resolves a relative path (the CLI passes the user's working directory); without it only
    absolute paths are accepted.  ``local_roots``: the directories a local path must be in (the API and
    pages pass ``settings.local_repository_roots``; the CLI on the server passes None, any path).
    """
    safe_location, userinfo, shown = _normalise_location(location, cwd, (rt.settings.mirrors_dir.resolve(),),
                                                         local_roots)
    name = name or _default_name(safe_location)
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid repository name {name!r}: use letters, digits, '.', '_', '-' and '/'", reason="bad_name"
        )
    if web_url is not None and not web_url.startswith(("http://", "https://")):
        raise InvalidInput("the web URL must start with http:// or https://", reason="bad_url")
    # what is wrong with the location first (linked already, unreachable, no repository), then the name:
    # a name clash with a location that cannot work would send the user the wrong way
    with rt.sessions() as session:
        if (other := session.scalars(select(Repository.name).where(Repository.url == safe_location)).first()):
            raise Conflict(f"{shown} is already linked, as {other}", hint="see it with: devlink repo list")
    access = RemoteAccess(*split_userinfo(userinfo)) if userinfo and is_http(safe_location) else None
    check_remote(safe_location, access, shown=shown)
    with rt.sessions() as session:
        if session.scalars(select(Repository.id).where(Repository.name == name)).first():
            raise Conflict(f"a repository named {name!r} is already linked",
                           hint="choose another name (devlink repo add --name NAME, or \"name\" in the API)")
    token = secrets.token_urlsafe(24)
    with rt.sessions.begin() as session:
        repository = Repository(
            host_id=_git_host(session).id,
            name=name,
            url=safe_location,
            url_secret=rt.vault.encrypt(userinfo) if userinfo else None,
            web_url=web_url.rstrip("/") if web_url else None,
            hook_token_hash=token_hash(token),
            hook_token=rt.vault.encrypt(token),
            next_sync_at=utcnow(),
            smart_commits=smart_commits,
        )
        session.add(repository)
        try:
            session.flush()
        except IntegrityError as exc:  # a concurrent add of the same name or URL
            raise Conflict(f"a repository named {name!r} or at {shown} is already linked") from exc
    shutil.rmtree(mirror_for(rt, repository).path, ignore_errors=True)  # never inherit a stale mirror
    return repository


def set_smart_commits(rt: Runtime, ref: str | int, enabled: bool) -> Repository:
    """Turn smart commits on or off for a repository; commits first seen while off never run them."""
    with rt.sessions.begin() as session:
        repository = find_repository(session, ref)
        repository.smart_commits = enabled
    return repository


def find_repository(session: Session, ref: str | int) -> Repository:
    """Find by id (ASCII digits within 64 bits: ``parse_row_id``) or exact name; NotFound names the way to list them."""
    text = str(ref)
    row_id = parse_row_id(text)
    repository = session.get(Repository, row_id) if row_id is not None else None
    if repository is None:
        repository = session.scalars(select(Repository).where(Repository.name == text)).first()
    if repository is None:
        raise NotFound(f"no repository {text!r}", hint="see them with: devlink repo list")
    return repository


def find_by_location(session: Session, location: str, *, cwd: Path | None = None) -> Repository:
    """Find the repository linked from ``location`` (a path or URL, credentials ignored; ``cwd`` as for add)."""
    safe, _, shown = _normalise_location(location, cwd)
    repository = session.scalars(select(Repository).where(Repository.url == safe)).first()
    if repository is None:
        raise NotFound(f"{shown} is not linked", hint=f"link it first: devlink repo add {shown}")
    return repository


def remove_repository(rt: Runtime, ref: str | int) -> str:
    """Unlink a repository: its webhook (on a host), rows, links and mirror go; return its name.

    A host account's repository comes back, unlinked, at the next discovery.
    """
    with rt.sessions() as session:
        found = find_repository(session, ref)
        on_host, found_id = found.account_id is not None, found.id
    if on_host:
        unlink_repository(rt, found_id)
    with rt.sessions.begin() as session:
        repository = find_repository(session, found_id)
        name, mirror_path = repository.name, mirror_for(rt, repository).path
        repository_id = repository.id
        session.execute(delete(IssueLink).where(IssueLink.repository_id == repository_id))
        session.delete(repository)
    shutil.rmtree(mirror_path, ignore_errors=True)
    return name


def hook_token(rt: Runtime, repository: Repository) -> str:
    """The repository's push-notification token, decrypted for the hook script."""
    if repository.hook_token is None:
        raise NotFound(f"repository {repository.name!r} has no hook token")
    return rt.vault.decrypt(repository.hook_token)


def repository_for_token(session: Session, token: str) -> Repository | None:
    return session.scalars(select(Repository).where(Repository.hook_token_hash == token_hash(token))).first()
