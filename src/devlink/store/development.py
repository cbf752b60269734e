"""The development document of one issue key, read with plain SQL: one implementation for every caller.

The REST API, the issue page and ``devlink issue KEY`` serve the same document.
It is read here with a handful of plain ``SELECT``s through a ``Fetch``
callable rather than the ORM, so that the CLI can answer from the database
driver alone: importing SQLAlchemy and the models costs more than a third of
a second, most of what ``devlink issue KEY --json`` would otherwise take
(``open_plain`` and ``bench/cli_startup.py``).  The web layer runs the same
SQL through its session (``store.queries.development``).

This module imports no SQLAlchemy; the views take any object with the
models' attribute names (ORM rows elsewhere, ``_Row`` namespaces here).
"""

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, unquote

from devlink.domain.issue_keys import project_key
from devlink.domain.times import tz_of

__all__ = [
    "Fetch",
    "branch_view",
    "commit_url",
    "commit_view",
    "development",
    "iso",
    "open_plain",
    "pull_request_view",
    "repository_summary",
    "smart_commit_view",
    "unknown_project_notice",
]

#: Runs one ``SELECT`` with ``:name`` parameters and returns its rows as tuples.
Fetch = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]

_REPOSITORY = ("id", "name", "url", "web_url")
_COMMIT = ("sha", "author_name", "author_email", "authored_at", "author_tz", "committer_name", "committer_email",
           "committed_at", "message", "parent_count", "id")
_BRANCH = ("name", "head_sha", "updated_at")
_PULL = ("number", "title", "state", "source_branch", "target_branch", "author", "url", "reviewers",
         "comment_count", "created_at", "updated_at", "merged_at")
_RUN = ("commit_sha", "issue_key", "position", "command", "args", "outcome", "message", "author_email",
        "repository_id", "created_at")
_TIMES = frozenset({"authored_at", "committed_at", "updated_at", "created_at", "merged_at"})
_IN_CHUNK = 500  # shas per ``IN (…)``: within every engine's limit of bound parameters


def iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def commit_url(web_url: str | None, sha: str) -> str | None:
    """A commit's page on its host, where the repository has a web page."""
    return f"{web_url}/commit/{sha}" if web_url else None


def repository_summary(repository: Any) -> dict[str, Any]:
    """The short form of a repository embedded in commits and branches."""
    return {"id": repository.id, "name": repository.name, "url": repository.url, "web_url": repository.web_url}


def commit_view(commit: Any, repository: Any) -> dict[str, Any]:
    local = commit.authored_at.astimezone(tz_of(commit.author_tz))
    return {
        "sha": commit.sha,
        "short_sha": commit.sha[:12],
        "repository": repository_summary(repository),
        "author": {"name": commit.author_name, "email": commit.author_email},
        "committer": {"name": commit.committer_name, "email": commit.committer_email},
        "date": local.isoformat(),
        "committed_at": iso(commit.committed_at),
        "summary": commit.message.split("\n", 1)[0],
        "message": commit.message,
        "merge": commit.parent_count > 1,
        "url": commit_url(repository.web_url, commit.sha),
    }


def branch_view(branch: Any, repository: Any) -> dict[str, Any]:
    return {
        "name": branch.name,
        "repository": repository_summary(repository),
        "head_sha": branch.head_sha,
        "updated_at": iso(branch.updated_at),
        "url": f"{repository.web_url}/tree/{quote(branch.name, safe='/')}" if repository.web_url else None,
    }


def pull_request_view(pull: Any, repository: Any) -> dict[str, Any]:
    return {
        "number": pull.number,
        "repository": repository_summary(repository),
        "title": pull.title,
        "state": pull.state,
        "source_branch": pull.source_branch,
        "target_branch": pull.target_branch,
        "author": pull.author,
        "url": pull.url,
        "reviewers": json.loads(pull.reviewers or "[]"),
        "comment_count": pull.comment_count,
        "created_at": iso(pull.created_at),
        "updated_at": iso(pull.updated_at),
        "merged_at": iso(pull.merged_at),
    }


def smart_commit_view(run: Any) -> dict[str, Any]:
    return {
        "commit": run.commit_sha,
        "key": run.issue_key,
        "position": run.position,
        "command": run.command,
        "args": run.args,
        "outcome": run.outcome,
        "message": run.message,
        "author_email": run.author_email,
        "repository_id": run.repository_id,
        "at": iso(run.created_at),
    }


def unknown_project_notice(project: str, *, outside: bool = False) -> str:
    """What to tell someone who looks up a key of a project the tracker does not have."""
    if outside:
        return (f"{project} is not a project of the tracker in use, so {project} keys are not linked; once it "
                "is, devlink picks it up within minutes; re-link history then: devlink sync --full --wait")
    return (f"{project} is not a project of the tracker, so {project} keys are not linked; "
            f"create it: devlink tracker project {project} NAME, then re-link history: devlink sync --full --wait")


def _utc(value: Any) -> datetime | None:
    """A stored time as an aware UTC datetime, whichever way the driver hands it over (SQLite: text)."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _rows(fetch: Fetch, sql: str, params: dict[str, Any], *groups: tuple[str, ...]) -> list[list[SimpleNamespace]]:
    """Each row split into one namespace per column group, times made aware."""
    out = []
    for row in fetch(sql, params):
        values, start = [], 0
        for names in groups:
            chunk = row[start : start + len(names)]
            values.append(SimpleNamespace(**{
                name: _utc(value) if name in _TIMES else value for name, value in zip(names, chunk, strict=True)
            }))
            start += len(names)
        out.append(values)
    return out


def _columns(alias: str, names: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{name}" for name in names)


def _linked(alias: str, table: str, entity_type: str) -> str:
    """The entities linked to ``:key`` in repositories that serve its project ``:project``.

    A repository with no ``repository_projects`` rows serves every project;
    both tests are lookups on that table's primary key (repository id, project key).
    """
    return (f"FROM {table} {alias} JOIN repositories r ON r.id = {alias}.repository_id "
            f"WHERE {alias}.id IN (SELECT entity_id FROM issue_links WHERE key = :key "
            f"AND entity_type = '{entity_type}') "
            "AND (NOT EXISTS (SELECT 1 FROM repository_projects rp WHERE rp.repository_id = r.id) "
            "OR EXISTS (SELECT 1 FROM repository_projects rp WHERE rp.repository_id = r.id "
            "AND rp.project_key = :project))")


def project_links(fetch: Fetch, project: str) -> bool:
    """Whether keys of ``project`` link: it is a tracker project, or the tracker has none (then every key links).

    The rule of docs/issue-keys.md, as ``BuiltinTracker.project_keys`` and
    ``sync.linking.known_keys`` apply it while syncing.
    """
    if _outside(fetch):  # the outside tracker's keys, as last cached (docs/jira.md); unknown yet: say nothing
        cached = fetch("SELECT value FROM tracker_cache WHERE key = 'projects'", {})
        return not cached or project in json.loads(cached[0][0])
    if fetch("SELECT 1 FROM projects WHERE key = :project", {"project": project}):
        return True
    return not fetch("SELECT 1 FROM projects LIMIT 1", {})


def _outside(fetch: Fetch) -> bool:
    return bool(fetch("SELECT 1 FROM tracker_connections LIMIT 1", {}))


def _smart_commit_runs(fetch: Fetch, shas: list[str], key: str) -> dict[str, list[dict[str, Any]]]:
    """Ledger rows of these commits for ``key``, by sha, in command order (for the panel's badges).

    Only this key's: a commit naming two keys carries the other's commands too, and those belong to
    that key's panel (which another project's permission guards).
    """
    runs: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(shas), _IN_CHUNK):
        chunk = shas[start : start + _IN_CHUNK]
        params = {"issue_key": key, **{f"s{i}": sha for i, sha in enumerate(chunk)}}
        sql = (f"SELECT {_columns('s', _RUN)} FROM smart_commit_runs s "
               f"WHERE s.issue_key = :issue_key AND s.commit_sha IN "
               f"({', '.join(':' + name for name in params if name != 'issue_key')}) "
               "ORDER BY s.position, s.issue_key, s.id")
        for (run,) in _rows(fetch, sql, params, _RUN):
            runs.setdefault(run.commit_sha, []).append(smart_commit_view(run))
    return runs


def development(fetch: Fetch, key: str) -> dict[str, Any]:
    """Everything linked to ``key`` in the repositories serving its project: counts, commits newest first,
    branches, pull requests.

    ``project_known`` is false when the key's project is not in the tracker
    (while the tracker has projects): such keys are never linked, so an empty
    document is not "nothing mentions it", and ``notice`` says what to do.
    """
    known = project_links(fetch, project_key(key))
    params = {"key": key, "project": project_key(key)}
    commits = _rows(fetch, f"SELECT {_columns('c', _COMMIT)}, {_columns('r', _REPOSITORY)} "
                           f"{_linked('c', 'commits', 'commit')} "
                           "ORDER BY c.committed_at DESC, c.authored_at DESC, c.id DESC", params, _COMMIT, _REPOSITORY)
    branches = _rows(fetch, f"SELECT {_columns('b', _BRANCH)}, {_columns('r', _REPOSITORY)} "
                            f"{_linked('b', 'branches', 'branch')} ORDER BY r.name, b.name", params,
                     _BRANCH, _REPOSITORY)
    pulls = _rows(fetch, f"SELECT {_columns('p', _PULL)}, {_columns('r', _REPOSITORY)} "
                         f"{_linked('p', 'pull_requests', 'pull_request')} ORDER BY p.updated_at DESC, p.id DESC",
                  params, _PULL, _REPOSITORY)
    runs = _smart_commit_runs(fetch, [c.sha for c, _ in commits], key)
    repositories = {r.id for _, r in commits} | {r.id for _, r in branches} | {r.id for _, r in pulls}
    pull_states: dict[str, int] = {}
    for pull, _ in pulls:
        pull_states[pull.state] = pull_states.get(pull.state, 0) + 1
    return {
        "key": key,
        "project_known": known,
        "notice": None if known else unknown_project_notice(project_key(key), outside=_outside(fetch)),
        "summary": {
            "commits": len(commits),
            "branches": len(branches),
            "pull_requests": len(pulls),
            "pull_request_states": pull_states,
            "repositories": len(repositories),
            "latest_commit_at": iso(commits[0][0].committed_at) if commits else None,
        },
        "commits": [{**commit_view(c, r), "smart_commits": runs.get(c.sha, [])} for c, r in commits],
        "branches": [branch_view(b, r) for b, r in branches],
        "pull_requests": [pull_request_view(p, r) for p, r in pulls],
    }


# -- the plain driver path, for the CLI ---------------------------------------------------

_NAMED = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


@contextmanager
def open_plain(database_url: str, revision: str | None) -> Iterator[Fetch | None]:
    """A ``Fetch`` straight on the database driver, or None when the ORM path must answer instead.

    None when the database does not exist yet (the ORM path creates it), is
    not at ``revision`` (the ORM path migrates it), or cannot be opened this
    way; an SQLite file is opened read-only.  Driver errors in later fetches
    propagate: the caller falls back on them too.
    """
    connection: Any = None
    with suppress(Exception):
        connection, style = _connect(database_url)
    if connection is None:
        yield None
        return
    try:
        fetch = _fetcher(connection, style)
        try:
            current = fetch("SELECT version_num FROM alembic_version", {})
        except Exception:
            current = []
        yield fetch if revision is not None and [tuple(row) for row in current] == [(revision,)] else None
    finally:
        connection.close()


def _connect(database_url: str) -> tuple[Any, str]:
    if database_url.startswith("sqlite:///"):
        path = Path(unquote(database_url.removeprefix("sqlite:///").split("?", 1)[0]))
        if not path.name or path.name == ":memory:" or not path.is_file():
            raise FileNotFoundError(path)
        import sqlite3

        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        return connection, "named"
    if database_url.startswith(("postgresql", "postgres://")):
        import psycopg

        scheme, rest = database_url.split("://", 1)
        if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError(scheme)
        return psycopg.connect("postgresql://" + rest, connect_timeout=10), "pyformat"
    raise ValueError("unsupported database URL")


def _fetcher(connection: Any, style: str) -> Fetch:
    def fetch(sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        if style == "pyformat":
            sql = _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))
        cursor = connection.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    return fetch
