"""The reads the web pages, the REST API and the CLI share; each returns plain JSON-ready data.

``development`` builds the one document of the development panel: the same
dict is served by ``GET /api/v1/issues/{key}/development`` and printed by
``devlink issue KEY --json``.
"""

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from devlink.domain.issue_keys import project_key
from devlink.domain.times import tz_of
from devlink.store.models import Account, Branch, Commit, Host, IssueLink, PullRequest, Repository
from devlink.store.tracker import Project, SmartCommitRun

__all__ = [
    "account_view",
    "development",
    "project_links",
    "repository_summary",
    "repository_view",
    "smart_commit_view",
    "smart_commits",
    "unknown_project_notice",
]


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def repository_summary(repository: Repository) -> dict[str, Any]:
    """The short form of a repository embedded in commits and branches."""
    return {"id": repository.id, "name": repository.name, "url": repository.url, "web_url": repository.web_url}


def repository_view(repository: Repository) -> dict[str, Any]:
    """A repository with its sync state, as ``GET /api/v1/repositories`` shows it (no secrets)."""
    error = None
    if repository.last_error_reason:
        error = {
            "reason": repository.last_error_reason,
            "message": repository.last_error_message,
            "at": _iso(repository.last_error_at),
        }
    return {
        **repository_summary(repository),
        "kind": "git" if repository.account_id is None else "github",
        "account_id": repository.account_id,
        "external_id": repository.external_id,
        "state": repository.state,
        "linked": repository.linked,
        "private": repository.private,
        "archived": repository.archived,
        "smart_commits": repository.smart_commits,
        "webhook": _webhook_view(repository),
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
        "host": {"id": host.id, "kind": host.kind, "name": host.name, "web_url": host.web_url,
                 "api_url": host.api_url, "ca_bundle": host.ca_bundle, "proxy": host.proxy, "timeout": host.timeout,
                 "oauth": bool(host.oauth_client_id)},
        "auth": account.auth_kind,
        "installation_id": account.installation_id,
        "auto_link": account.auto_link,
        "smart_commits": account.smart_commits,
        "webhook": {"scope": "organization" if account.hook_id else "repository", "id": account.hook_id},
        "discovered_at": _iso(account.discovered_at),
        "next_discovery_at": _iso(account.next_discovery_at),
        "rate_limit": None if account.rate_limit is None else {
            "limit": account.rate_limit, "remaining": account.rate_remaining, "reset_at": _iso(account.rate_reset_at),
        },
        "repositories": counts or {},
        "error": error,
        "created_at": _iso(account.created_at),
    }


def _commit_view(commit: Commit, repository: Repository) -> dict[str, Any]:
    local = commit.authored_at.astimezone(tz_of(commit.author_tz))
    return {
        "sha": commit.sha,
        "short_sha": commit.sha[:12],
        "repository": repository_summary(repository),
        "author": {"name": commit.author_name, "email": commit.author_email},
        "committer": {"name": commit.committer_name, "email": commit.committer_email},
        "date": local.isoformat(),
        "committed_at": _iso(commit.committed_at),
        "summary": commit.message.split("\n", 1)[0],
        "message": commit.message,
        "merge": commit.parent_count > 1,
        "url": f"{repository.web_url}/commit/{commit.sha}" if repository.web_url else None,
    }


def _branch_view(branch: Branch, repository: Repository) -> dict[str, Any]:
    return {
        "name": branch.name,
        "repository": repository_summary(repository),
        "head_sha": branch.head_sha,
        "updated_at": _iso(branch.updated_at),
        "url": f"{repository.web_url}/tree/{quote(branch.name, safe='/')}" if repository.web_url else None,
    }


def _pull_request_view(pull: PullRequest, repository: Repository) -> dict[str, Any]:
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
        "created_at": _iso(pull.created_at),
        "updated_at": _iso(pull.updated_at),
        "merged_at": _iso(pull.merged_at),
    }


def smart_commit_view(run: SmartCommitRun) -> dict[str, Any]:
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
        "at": _iso(run.created_at),
    }


def _smart_commit_runs(session: Session, shas: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Ledger rows of these commits, by sha, in command order (for the panel's badges)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(shas), 500):
        for run in session.scalars(
            select(SmartCommitRun).where(SmartCommitRun.commit_sha.in_(shas[start : start + 500]))
            .order_by(SmartCommitRun.position, SmartCommitRun.issue_key)
        ):
            runs.setdefault(run.commit_sha, []).append(smart_commit_view(run))
    return runs


def smart_commits(session: Session, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Recent ledger rows, newest first, optionally only one outcome (``done``, ``error``, ``skipped``)."""
    query = select(SmartCommitRun).order_by(SmartCommitRun.created_at.desc(), SmartCommitRun.id.desc())
    if status:
        query = query.where(SmartCommitRun.outcome == status)
    return [smart_commit_view(run) for run in session.scalars(query.limit(limit))]


def _linked(entity_type: str, key: str) -> Any:
    return select(IssueLink.entity_id).where(IssueLink.key == key, IssueLink.entity_type == entity_type)


def project_links(session: Session, project: str) -> bool:
    """Whether keys of ``project`` link: it is a tracker project, or the tracker has none (then every key links).

    The rule of docs/issue-keys.md, as ``BuiltinTracker.project_keys`` and
    ``sync.linking.known_keys`` apply it while syncing.
    """
    if session.scalar(select(Project.id).where(Project.key == project)) is not None:
        return True
    return session.scalar(select(Project.id).limit(1)) is None


def unknown_project_notice(project: str) -> str:
    """What to tell someone who looks up a key of a project the tracker does not have."""
    return (f"{project} is not a project of the tracker, so {project} keys are not linked; "
            f"create it: devlink tracker project {project} NAME, then devlink sync --full")


def development(session: Session, key: str) -> dict[str, Any]:
    """Everything linked to ``key``: summary counts, commits newest first, branches, pull requests.

    ``project_known`` is false when the key's project is not in the tracker
    (while the tracker has projects): such keys are never linked, so an empty
    document is not "nothing mentions it", and ``notice`` says what to do.
    """
    known = project_links(session, project_key(key))
    commits = session.execute(
        select(Commit, Repository)
        .join(Repository, Repository.id == Commit.repository_id)
        .where(Commit.id.in_(_linked("commit", key)))
        .order_by(Commit.committed_at.desc(), Commit.authored_at.desc(), Commit.id.desc())
    ).all()
    branches = session.execute(
        select(Branch, Repository)
        .join(Repository, Repository.id == Branch.repository_id)
        .where(Branch.id.in_(_linked("branch", key)))
        .order_by(Repository.name, Branch.name)
    ).all()
    pulls = session.execute(
        select(PullRequest, Repository)
        .join(Repository, Repository.id == PullRequest.repository_id)
        .where(PullRequest.id.in_(_linked("pull_request", key)))
        .order_by(PullRequest.updated_at.desc())
    ).all()
    runs = _smart_commit_runs(session, [c.sha for c, _ in commits])
    repositories = {r.id for _, r in commits} | {r.id for _, r in branches} | {r.id for _, r in pulls}
    pull_states: dict[str, int] = {}
    for pull, _ in pulls:
        pull_states[pull.state] = pull_states.get(pull.state, 0) + 1
    return {
        "key": key,
        "project_known": known,
        "notice": None if known else unknown_project_notice(project_key(key)),
        "summary": {
            "commits": len(commits),
            "branches": len(branches),
            "pull_requests": len(pulls),
            "pull_request_states": pull_states,
            "repositories": len(repositories),
            "latest_commit_at": _iso(commits[0][0].committed_at) if commits else None,
        },
        "commits": [{**_commit_view(c, r), "smart_commits": runs.get(c.sha, [])} for c, r in commits],
        "branches": [_branch_view(b, r) for b, r in branches],
        "pull_requests": [_pull_request_view(p, r) for p, r in pulls],
    }
