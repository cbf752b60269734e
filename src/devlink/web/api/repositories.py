"""``/api/v1/repositories``: link, list, sync and unlink repositories."""

from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from devlink.store import queries
from devlink.store.models import Repository
from devlink.sync.access import may_sync, set_repository_projects, visible_repository, visible_repository_ids
from devlink.sync.identities import set_repository_trust
from devlink.sync.repositories import add_repository, find_repository, remove_repository, set_smart_commits
from devlink.web.deps import PrincipalDep, RowId, RuntimeDep, SessionDep
from devlink.web.responses import problems

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/repositories", tags=["repositories"])


class RepositoryIn(BaseModel):
    model_config = ConfigDict(strict=True)  # 0 is not false: the schema says boolean
    url: str = Field(description="a git URL (credentials allowed, never shown again) or a local path")
    name: str | None = Field(default=None, description="defaults to the last part of the location")
    web_url: str | None = Field(default=None, description="web page of the repository, for links")
    smart_commits: bool = Field(default=True, description="run smart commits of commits pushed after linking")


TrustPolicy = Literal["author", "pusher", "signed"]


class RepositoryPatch(BaseModel):
    """Any subset of the settings; a field left out keeps its value."""

    model_config = ConfigDict(strict=True)
    smart_commits: bool | None = Field(default=None, description="run smart commits of commits pushed from now on")
    smart_commit_trust: TrustPolicy | None = Field(
        default=None, description="who a smart commit acts as: author (its e-mail), pusher (who the host's webhook "
                                  "says pushed it), signed (its SSH signature); null: the account's, else author")
    projects: list[str] | None = Field(default=None, max_length=1000,
                                       description="the project keys the repository serves; null or [] for all")


@router.get("")
def list_repositories(session: SessionDep, rt: RuntimeDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """Every linked repository the person may see (docs/permissions.md), with its sync state."""
    query = select(Repository).order_by(Repository.name)
    visible = visible_repository_ids(rt, principal)
    if visible is not None:
        query = query.where(Repository.id.in_(sorted(visible)))
    return queries.repository_views(session, session.scalars(query))


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(409))
def create_repository(body: RepositoryIn, rt: RuntimeDep, response: Response) -> dict[str, Any]:
    """Link a repository and queue its initial backfill."""
    repository = add_repository(rt, body.url, name=body.name, web_url=body.web_url, smart_commits=body.smart_commits,
                                local_roots=rt.settings.local_repository_roots)
    rt.queue.request_sync(repository.id, full=False, trigger="manual")
    response.headers["Location"] = f"/api/v1/repositories/{repository.id}"
    with rt.sessions() as session:
        return queries.repository_view(find_repository(session, repository.id))


@router.get("/{repository_id}", responses=problems(404))
def get_repository(repository_id: RowId, session: SessionDep, rt: RuntimeDep,
                   principal: PrincipalDep) -> dict[str, Any]:
    """One repository; 404 also for one the person may not see."""
    return queries.repository_view(visible_repository(rt, session, principal, repository_id))


@router.patch("/{repository_id}", responses=problems(404))
def patch_repository(repository_id: RowId, body: RepositoryPatch, rt: RuntimeDep) -> dict[str, Any]:
    """Turn smart commits on or off; set or clear their trust policy; scope it to projects (null or [] for all)."""
    with rt.sessions() as session:
        find_repository(session, repository_id)  # 404 before anything changes
    if "projects" in body.model_fields_set:
        set_repository_projects(rt, repository_id, body.projects)
    if body.smart_commits is not None:
        set_smart_commits(rt, repository_id, body.smart_commits)
    if "smart_commit_trust" in body.model_fields_set:
        set_repository_trust(rt, repository_id, body.smart_commit_trust)
    with rt.sessions() as session:
        return queries.repository_view(find_repository(session, repository_id))


@router.delete("/{repository_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404))
def delete_repository(repository_id: RowId, rt: RuntimeDep) -> Response:
    """Unlink: the repository's commits, branches, links and mirror are removed."""
    remove_repository(rt, repository_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{repository_id}/sync", status_code=status.HTTP_202_ACCEPTED, responses=problems(404))
def sync_repository(repository_id: RowId, rt: RuntimeDep, session: SessionDep, principal: PrincipalDep,
                    full: bool = False) -> dict[str, Any]:
    """Queue a soft (default) or full sync; while one runs, the request becomes one follow-up soft sync.

    404 for a repository the person may not see; 403 for a member's full sync.
    """
    repository = visible_repository(rt, session, principal, repository_id)
    may_sync(principal, full=full)
    outcome = rt.queue.request_sync(repository.id, full=full, trigger="manual")
    return {"repository": repository.id, "kind": "full" if full else "soft", "status": outcome}
