"""``/api/v1/tracker``: the tracker in use; ``/api/v1/projects`` and ``/aliases``: the built-in one's."""

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from devlink.errors import InvalidInput
from devlink.sync.access import project_views
from devlink.sync.trackers import add_alias, describe, use_builtin, use_outside
from devlink.trackers.builtin import create_project, delete_project
from devlink.web.deps import PrincipalDep, RuntimeDep, SessionDep
from devlink.web.responses import problems

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["tracker"])


class TrackerIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    kind: str = Field(description="builtin, or jira")
    url: str | None = Field(default=None, description="jira: the site's base URL", max_length=500)
    token: str | None = Field(default=None, description="jira: Data Center personal access token, or Cloud API "
                              "token with email; stored encrypted, never returned", max_length=10_000)
    email: str | None = Field(default=None, description="jira Cloud: the e-mail of the API token's account",
                              max_length=320)
    ca_bundle: str | None = Field(default=None, max_length=1000)
    proxy: str | None = Field(default=None, max_length=500)
    timeout: float | None = Field(default=None, gt=0, le=600)
    devinfo_client_id: str | None = Field(default=None, max_length=200, description="jira Cloud: OAuth client "
                                          "id for the development information API")
    devinfo_client_secret: str | None = Field(default=None, max_length=1000, description="its secret; stored "
                                              "encrypted, never returned")
    gateway_url: str | None = Field(default=None, max_length=500, description="default https://api.atlassian.com")


@router.get("/tracker")
def get_tracker(rt: RuntimeDep) -> dict[str, Any]:
    """The tracker in use: ``{"kind": "builtin"}`` or the outside tracker's settings, never its credential."""
    return describe(rt)


@router.put("/tracker", responses=problems(422, 502))
def put_tracker(body: TrackerIn, rt: RuntimeDep) -> dict[str, Any]:
    """Switch the tracker; an outside one is verified first.  ``notes`` says what follows from the change."""
    if body.kind == "builtin":
        change = use_builtin(rt)
    else:
        if not body.url or not body.token:
            raise InvalidInput(f"tracker {body.kind} needs url and token", reason="invalid")
        change = use_outside(rt, body.kind, url=body.url, token=body.token, email=body.email,
                             ca_bundle=body.ca_bundle, proxy=body.proxy, timeout=body.timeout,
                             devinfo_client_id=body.devinfo_client_id,
                             devinfo_client_secret=body.devinfo_client_secret, gateway_url=body.gateway_url)
    return {**change.tracker, "notes": change.notes}


class ProjectIn(BaseModel):
    model_config = ConfigDict(strict=True)
    key: str = Field(description="upper-case letter, then upper-case letters or digits, 2 to 10 in all: DEMO")
    name: str
    workflow: str | None = Field(default=None, description="a workflow by name; the default one when absent")


class AliasIn(BaseModel):
    model_config = ConfigDict(strict=True)
    email: str
    username: str


@router.get("/projects")
def list_projects(session: SessionDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The built-in tracker's projects; a member gets those they may browse."""
    return project_views(session, principal)


@router.post("/projects", status_code=status.HTTP_201_CREATED)
def add_project(body: ProjectIn, rt: RuntimeDep) -> dict[str, Any]:
    """Create a project (every permission granted to everyone), or rename an existing one."""
    with rt.sessions.begin() as session:
        project = create_project(session, body.key, body.name, workflow=body.workflow)
        return {"key": project.key, "name": project.name}


@router.delete("/projects/{key}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404))
def remove_project(key: str, rt: RuntimeDep) -> Response:
    """Delete a project of the built-in tracker with its issues; development data stays linked by key."""
    with rt.sessions.begin() as session:
        delete_project(session, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/aliases", status_code=status.HTTP_201_CREATED, responses=problems(404))
def alias(body: AliasIn, rt: RuntimeDep) -> dict[str, Any]:
    """Map a commit author e-mail to a user for smart commits (with Jira: a user name or account id)."""
    found = add_alias(rt, body.email, body.username)
    return {"email": found["email"], "username": body.username}
