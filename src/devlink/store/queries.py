"""The reads the web pages, the REST API and the CLI share; each returns plain JSON-ready data.

``development`` builds the one document of the development panel: the same
dict is served by ``GET /api/v1/issues/{key}/development`` and printed by
``devlink issue KEY --json``.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from devlink.domain.times import tz_of
from devlink.store.models import Branch, Commit, IssueLink, PullRequest, Repository
from devlink.store.tracker import SmartCommitRun

__all__ = ["development", "repository_summary", "repository_view", "smart_commit_view", "smart_commits"]


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
        "kind": "git",
        "state": repository.state,
        "linked": repository.linked,
        "smart_commits": repository.smart_commits,
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
        },
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
        "url": f"{repository.web_url}/tree/{branch.name}" if repository.web_url else None,
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
        "updated_at": _iso(pull.updated_at),
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


def development(session: Session, key: str) -> dict[str, Any]:
    """Everything linked to ``key``: summary counts, commits newest first, branches, pull requests."""
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
