"""``devlink demo``: a complete, local demonstration on the embedded default.

It creates a project DEMO with users and issues in the built-in tracker, a
git repository with a realistic few days of history that mentions them
(branches, a merge, keys in messages and branch names), links and backfills
it (the backfill runs no smart commits), then pushes a few more commits with
smart commits and syncs again, so the issues show comments, work logged and
status changes, and one deliberate error.  A post-receive hook is installed
so that pushing to the demo repository updates devlink while it serves.

Everything lives under ``$DEVLINK_HOME/demo``; running it again reuses it.
"""

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from devlink.errors import DevlinkError
from devlink.hosts.git import inherited_environment
from devlink.runtime import Runtime
from devlink.store.models import Repository
from devlink.store.tracker import Project, SmartCommitRun, TrackerUser
from devlink.sync.jobs import run_sync
from devlink.sync.people import generate_password, set_password, set_role
from devlink.sync.push_hooks import hook_script, install_hook
from devlink.sync.repositories import add_repository
from devlink.trackers.builtin import import_data

__all__ = ["DemoResult", "build_demo"]

GIT_TIMEOUT = 60.0  # seconds for one git command on the demo's small local repositories

PEOPLE = {
    "alice": ("Alice Example", "alice@demo.example"),
    "bob": ("Bob Example", "bob@demo.example"),
}
ROLES = {"alice": "admin", "bob": "member"}  # who may sign in to the demo, and as what

TRACKER = {
    "users": [{"username": u, "name": n, "emails": [e]} for u, (n, e) in PEOPLE.items()],
    "projects": [{"key": "DEMO", "name": "Demo project"}],
    "issues": [
        {"key": "DEMO-1", "summary": "Importer drops the last line of a file", "status": "In Progress",
         "assignee": "alice", "reporter": "bob"},
        {"key": "DEMO-2", "summary": "Sign-in page", "assignee": "bob", "reporter": "alice"},
        {"key": "DEMO-3", "summary": "Speed up the nightly report", "assignee": "alice", "reporter": "alice"},
        {"key": "DEMO-4", "summary": "Upgrade the HTTP client", "assignee": "bob", "reporter": "bob"},
        {"key": "DEMO-5", "summary": "Document the import format", "reporter": "alice"},
    ],
}

# (author, message, branch to commit on) for the history that exists before devlink links the repository
HISTORY = [
    ("alice", "Initial project layout", "main"),
    ("alice", "Add the file importer", "main"),
    ("bob", "DEMO-4 Upgrade httpx to the current release", "main"),
    ("alice", "DEMO-1 Add a failing test for files without a final newline", "main"),
    ("bob", "DEMO-2 Sketch the sign-in form", "feature/DEMO-2-sign-in"),
    ("bob", "DEMO-2 Validate the e-mail field\n\nAlso fixes a typo noticed in DEMO-5's draft.",
     "feature/DEMO-2-sign-in"),
    ("alice", "DEMO-3 Cache the report query", "main"),
    ("alice", "DEMO-1 Read the last line even without a newline", "main"),
]

# pushed after linking: these run as smart commits
LIVE = [
    ("alice", "DEMO-1 #resolve #comment Fixed: the importer now reads the last line. #time 1h 30m debugging", "main"),
    ("bob", "DEMO-2 #start #time 3h form and validation", "feature/DEMO-2-sign-in"),
    ("alice", "DEMO-3 #start #comment Query is cached; measuring the nightly run next", "main"),
    ("bob", "DEMO-4 #fnish upgrade", "main"),  # a typo on purpose: shows up as a smart-commit error
]


@dataclass(frozen=True)
class DemoResult:
    repository: Path
    repository_id: int
    commits: int
    smart_commits_done: int
    smart_commits_failed: int
    has_kafka: bool  # the README's next step (a KAFKA project) is done already
    passwords: dict[str, str]  # user → password, for demo users given one by this run (shown once)


def _git(work: Path, *args: str, author: str | None = None, when: int | None = None) -> str:
    command = next((arg for arg in args if not arg.startswith("-") and "=" not in arg), "")
    env = inherited_environment()  # none of devlink's secrets, none of the caller's GIT_*
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    name, email = PEOPLE[author or "alice"]
    env.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email)
    if when is not None:
        env.update(GIT_AUTHOR_DATE=f"@{when} +0100", GIT_COMMITTER_DATE=f"@{when} +0100")
    try:
        done = subprocess.run(["git", "-C", str(work), *args], env=env, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DevlinkError(f"demo: git {command} took longer than {GIT_TIMEOUT:g} s") from None
    if done.returncode != 0:
        raise DevlinkError(f"demo: git {command} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _commit(work: Path, author: str, message: str, branch: str, when: int) -> None:
    if _git(work, "branch", "--show-current") != branch:
        exists = _git(work, "branch", "--list", branch)
        _git(work, "checkout", "-q", *([] if exists else ["-b"]), branch)
    notes = work / f"notes-{branch.replace('/', '-')}.md"  # one file per branch: merges never conflict
    notes.write_text((notes.read_text() if notes.exists() else "") + f"- {message.splitlines()[0]}\n")
    _git(work, "add", notes.name)
    _git(work, "commit", "-q", "-m", message, author=author, when=when)


def build_demo(rt: Runtime, *, server_url: str) -> DemoResult:
    """Create (or reuse) the demo data and repository; returns what was set up."""
    root = rt.settings.home / "demo"
    work, bare = root / "work", root / "demo.git"
    with rt.sessions() as session:
        existing = session.query(Repository).filter(Repository.name == "demo").first()
        repository_id = existing.id if existing else None
    if repository_id is None:  # a second run keeps what the first one (and the smart commits) left
        with rt.sessions.begin() as session:
            import_data(session, TRACKER)
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        _git(root, "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare))
        _git(root, "-c", "init.defaultBranch=main", "init", "-q", str(work))
        _git(work, "remote", "add", "origin", str(bare))
        start = int(time.time()) - 4 * 86400
        for index, (author, message, branch) in enumerate(HISTORY):
            _commit(work, author, message, branch, start + index * 3 * 3600)
        _git(work, "checkout", "-q", "main")
        _git(work, "merge", "-q", "--no-ff", "-m", "Merge DEMO-2 sign-in form", "feature/DEMO-2-sign-in",
             when=start + len(HISTORY) * 3 * 3600)
        _git(work, "push", "-q", "origin", "--all")
        repository_id = add_repository(rt, str(bare), name="demo").id
        run_sync(rt, repository_id, full=False)  # the backfill: no smart commits run
        now = int(time.time()) - 3600
        for index, (author, message, branch) in enumerate(LIVE):
            _commit(work, author, message, branch, now + index * 60)
        _git(work, "push", "-q", "origin", "--all")
    run_sync(rt, repository_id, full=False)
    install_hook(bare, hook_script(rt, repository_id, server_url))
    with rt.sessions() as session:
        repository = session.get(Repository, repository_id)
        commits = repository.commits_indexed if repository else 0
        # from the ledger, not this run: a second ``devlink demo`` runs none again, yet they were done
        outcomes: dict[str, int] = {outcome: count for outcome, count in session.execute(
            select(SmartCommitRun.outcome, func.count()).where(SmartCommitRun.repository_id == repository_id)
            .group_by(SmartCommitRun.outcome))}
        has_kafka = session.scalars(select(Project.id).where(Project.key == "KAFKA")).first() is not None
    return DemoResult(bare, repository_id, commits, outcomes.get("done", 0), outcomes.get("error", 0), has_kafka,
                      _give_passwords(rt))


def _give_passwords(rt: Runtime) -> dict[str, str]:
    """A password and role for each demo user who has none yet (a later run leaves them as they are)."""
    with rt.sessions() as session:
        without = list(session.scalars(select(TrackerUser.username).where(
            TrackerUser.username.in_(ROLES), TrackerUser.password_hash.is_(None))))
    given: dict[str, str] = {}
    for username in sorted(without):
        given[username] = generate_password()
        set_password(rt, username, given[username])
        set_role(rt, username, ROLES[username])
    return given
