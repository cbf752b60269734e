"""``/api/v1/issues/{key}/development``: the development panel's document."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from devlink.domain.issue_keys import is_key, project_key
from devlink.errors import Forbidden, InvalidInput, NotFound
from devlink.store import queries
from devlink.sync.access import NO_PERMISSION_NOTE, browsable_projects, development_access, outside_issue
from devlink.trackers.base import TrackerUnavailable
from devlink.trackers.builtin import ISSUE_PAGE_SIZE, MAX_ISSUE_PAGE_SIZE, create_issue, issue_view
from devlink.web.deps import PrincipalDep, RuntimeDep, SessionDep
from devlink.web.responses import problems

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/issues", tags=["issues"])


class IssueIn(BaseModel):
    model_config = ConfigDict(strict=True)
    key: str
    summary: str
    description: str = ""
    status: str | None = Field(default=None, description="the workflow's first status when absent")
    assignee: str | None = None
    reporter: str | None = None


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(404, 409))
def create(body: IssueIn, rt: RuntimeDep) -> dict[str, Any]:
    """Create an issue in the built-in tracker (its project must exist)."""
    with rt.sessions.begin() as session:
        create_issue(session, body.key, body.summary, description=body.description, status=body.status,
                     assignee=body.assignee, reporter=body.reporter, must_be_new=True)
    with rt.sessions() as session:
        return issue_view(session, body.key)


@router.get("/{key}", responses=problems(404, 502))
def issue(
    key: str,
    session: SessionDep,
    rt: RuntimeDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_ISSUE_PAGE_SIZE, description="entries of each list")] = ISSUE_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="newest entries of each list to skip")] = 0,
) -> dict[str, Any]:
    """The issue with status, the transitions available now, and a page of its comments, worklogs and history.

    Each list holds the ``limit`` newest entries after skipping the ``offset`` newest, oldest first;
    ``totals`` counts each list whole, so a client pages with ``offset += limit`` until it passes the total.
    With an outside tracker (Jira) in use: ``{"key", "tracker", "summary", "status", "assignee", "url"}``
    from that tracker, cached for a minute (502 while it cannot be reached); a member gets it only for a
    project whose development information they may view, else 404 as for an issue Jira does not have.
    """
    outside = outside_issue(rt, principal, key) if is_key(key) else None
    if outside is not None:
        if outside.get("missing"):
            raise NotFound(f"no issue {key} in the tracker (or devlink's user there cannot see it)")
        if "error" in outside:
            raise TrackerUnavailable(outside["error"])
        return outside
    browsable = browsable_projects(session, principal)
    if browsable is not None and project_key(key) not in browsable:  # the same 404 as for an issue not there
        raise NotFound(f"no issue {key}")
    return issue_view(session, key, limit=limit, offset=offset)


@router.get("/{key}/development", responses=problems(403))
def development(key: str, session: SessionDep, rt: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Summary counts, commits (newest first), branches and pull requests linked to ``key``.

    Only entities of repositories that serve the key's project; 403 (``forbidden``) for a person
    without the project's development permission (docs/permissions.md).
    """
    if not is_key(key):
        raise InvalidInput(f"{key!r} is not an issue key (like ABC-123)", reason="bad_key")
    access = development_access(rt, principal, project_key(key))
    if not access.allowed:
        raise Forbidden(access.note or NO_PERMISSION_NOTE)
    return queries.development(session, key)
