"""The reads the web pages, the REST API and the CLI share; each returns plain JSON-ready data.

``development`` builds the one document of the development panel: the same
dict is served by ``GET /api/v1/issues/{key}/development`` and printed by
``devlink issue KEY --json``.
"""

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session, object_session

from devlink.domain.smart_commits import effective_trust
from devlink.hosts import registered_kind
from devlink.store import development as development_document
from devlink.store.development import iso as _iso
from devlink.store.development import repository_summary, smart_commit_view, unknown_project_notice
from devlink.store.models import Account, Host, Repository
from devlink.store.people import RepositoryProject
from devlink.store.tracker import DevPushState, SmartCommitRun

__all__ = [
    "account_view",
    "development",
    "project_links",
    "repository_summary",
    "repository_view",
    "repository_views",
    "smart_commit_view",
    "smart_commits",
    "unknown_project_notice",
]


def repository_view(repository: Repository, projects: list[str] | None = None) -> dict[str, Any]:
    """A repository with its sync state, as ``GET /api/v1/repositories`` shows it (no secrets).

    ``projects``: the projects it is scoped to (empty: every project), read here when not given.
    """
    error = None
    if repository.last_error_reason:
        error = {
            "reason": repository.last_error_reason,
            "message": repository.last_error_message,
            "at": _iso(repository.last_error_at),
        }
    return {
        **repository_summary(repository),
        "kind": "git" if repository.account_id is None else _host_kind(repository),
        "host_path": repository.host_path,
        "account_id": repository.account_id,
        "external_id": repository.external_id,
        "state": repository.state,
        "linked": repository.linked,
        "private": repository.private,
        "archived": repository.archived,
        "smart_commits": repository.smart_commits,
        "projects": _projects(repository) if projects is None else projects,
        "smart_commit_trust": repository.smart_commit_trust,  # None: inherited
        "smart_commit_trust_effective": effective_trust(repository.smart_commit_trust, _account_trust(repository)),
        "webhook": _webhook_view(repository),
        "tracker_push": _push_view(repository),
        "created_at": _iso(repository.created_at),
        "sync": {
            "state": repository.sync_state,
            "kind": repository.sync_kind,
            "pending": repository.sync_pending,
            "started_at": _iso(repository.sync_started_at),
            "finished_at": _iso(repository.sync_finished_at),
            "progress": repository.sync_progress if repository.sync_state == "running" else None,
            "next_at": _iso(repository.next_sync_at),
            "commits_indexed": repository.commits_indexed,
            "error": error,
            "skipped": _entity_errors(repository),
        },
    }


def repository_views(session: Session, repositories: Iterable[Repository]) -> list[dict[str, Any]]:
    """``repository_view`` of many rows: their push states read in one query, not one per row."""
    rows = list(repositories)
    ids = [r.id for r in rows]
    scopes: dict[int, list[str]] = {}
    for start in range(0, len(ids), 500):  # loaded into the session, where ``_push_view`` finds them
        chunk = ids[start:start + 500]
        session.scalars(select(DevPushState).where(DevPushState.repository_id.in_(chunk))).all()
        for repository_id, key in session.execute(
                select(RepositoryProject.repository_id, RepositoryProject.project_key)
                .where(RepositoryProject.repository_id.in_(chunk)).order_by(RepositoryProject.project_key)):
            scopes.setdefault(repository_id, []).append(key)
    return [repository_view(r, scopes.get(r.id, [])) for r in rows]


def _projects(repository: Repository) -> list[str]:
    """The projects the repository is scoped to, sorted; empty: it serves every project."""
    session = object_session(repository)
    if session is None:
        return []
    return list(session.scalars(select(RepositoryProject.project_key)
                                .where(RepositoryProject.repository_id == repository.id)
                                .order_by(RepositoryProject.project_key)))


def _account_trust(repository: Repository) -> str | None:
    """The trust policy of the repository's account, which applies when the repository sets none."""
    if repository.account_id is None:
        return None
    session = object_session(repository)
    account = session.get(Account, repository.account_id) if session is not None else None
    return account.smart_commit_trust if account is not None else None


def _host_kind(repository: Repository) -> str | None:
    """The registered kind of the repository's host (read through the session, where hosts are few)."""
    session = object_session(repository)
    host = session.get(Host, repository.host_id) if session is not None else None
    return registered_kind(host.kind) if host is not None else None


def _push_view(repository: Repository) -> dict[str, Any] | None:
    """Whether the repository's development data is in the outside tracker (None: nothing to send it to yet)."""
    session = object_session(repository)
    state = session.get(DevPushState, repository.id) if session is not None else None
    if state is None:
        return None
    return {"state": state.state, "message": state.message or None, "sent": state.sent,
            "unknown_keys": json.loads(state.unknown_keys or "[]"), "at": _iso(state.updated_at)}


def _entity_errors(repository: Repository) -> dict[str, Any]:
    """What the last syncs skipped or deferred, by entity type (``pull_requests``: a 403, or the API budget)."""
    try:
        notes = json.loads(repository.entity_errors) if repository.entity_errors else {}
    except ValueError:
        return {}
    return notes if isinstance(notes, dict) else {}


def _webhook_view(repository: Repository) -> dict[str, Any] | None:
    """Whether the repository is real-time, and why not (never the secret)."""
    if repository.account_id is None:
        return None
    state = repository.webhook_state or ("none" if repository.linked else None)
    return {"state": state, "id": repository.webhook_id, "error": repository.webhook_error,
            "realtime": state in ("installed", "account", "app")}


def account_view(account: Account, host: Host, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """An account as the API shows it: host, options, budget and errors; never its credential."""
    error = None
    if account.last_error_reason:
        error = {"reason": account.last_error_reason, "message": account.last_error_message,
                 "at": _iso(account.last_error_at)}
    return {
        "id": account.id,
        "name": account.name,
        "kind": account.kind,
        "host": {"id": host.id, "kind": host.kind, "host_kind": registered_kind(host.kind), "name": host.name,
                 "web_url": host.web_url,
                 "api_url": host.api_url, "ca_bundle": host.ca_bundle, "proxy": host.proxy, "timeout": host.timeout,
                 "oauth": bool(host.oauth_client_id)},
        "auth": account.auth_kind,
        **_account_options(account),
        "auto_link": account.auto_link,
        "smart_commits": account.smart_commits,
        "smart_commit_trust": account.smart_commit_trust,  # None: author
        "smart_commit_trust_effective": effective_trust(None, account.smart_commit_trust),
        "webhook": {"scope": account.kind if account.hook_id else "repository", "id": account.hook_id},
        "token_expires_at": _iso(account.token_expires_at),
        "discovered_at": _iso(account.discovered_at),
        "next_discovery_at": _iso(account.next_discovery_at),
        "rate_limit": None if account.rate_limit is None else {
            "limit": account.rate_limit, "remaining": account.rate_remaining, "reset_at": _iso(account.rate_reset_at),
        },
        "repositories": counts or {},
        "error": error,
        "created_at": _iso(account.created_at),
    }


def smart_commits(session: Session, *, status: str | None = None, limit: int = 100,
                  projects: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Recent ledger rows, newest first, optionally only one outcome (``done``, ``error``, ``skipped``, ``pending``).

    ``projects``: only runs of keys of these projects (None: every project; empty: none).
    """
    query = select(SmartCommitRun).order_by(SmartCommitRun.created_at.desc(), SmartCommitRun.id.desc())
    if status:
        query = query.where(SmartCommitRun.outcome == status)
    if projects is not None:
        keys = sorted(set(projects))  # project keys are letters and digits: no LIKE wildcard in them
        if not keys:
            return []
        query = query.where(or_(*(SmartCommitRun.issue_key.startswith(f"{key}-") for key in keys)))
    return [smart_commit_view(run) for run in session.scalars(query.limit(limit))]


def project_links(session: Session, project: str) -> bool:
    """Whether keys of ``project`` link (see ``store.development.project_links``)."""
    return development_document.project_links(_fetch(session), project)


def development(session: Session, key: str) -> dict[str, Any]:
    """The development document of ``key`` (``store.development``), read through this session."""
    return development_document.development(_fetch(session), key)


def _fetch(session: Session) -> development_document.Fetch:
    def fetch(sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        return session.execute(text(sql), params).all()

    return fetch


def _account_options(account: Account) -> dict[str, Any]:
    """The host kind's own account settings that are not secrets (a GitHub App installation id)."""
    try:
        options = json.loads(account.options) if account.options else {}
    except ValueError:
        options = {}
    return {"installation_id": options.get("installation_id") if isinstance(options, dict) else None}
