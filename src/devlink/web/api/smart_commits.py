"""``/api/v1/smart-commits``: the ledger of executed smart-commit commands, newest first."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from devlink.store import queries
from devlink.sync.access import viewable_projects
from devlink.web.deps import PrincipalDep, RuntimeDep, SessionDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/smart-commits", tags=["smart commits"])


@router.get("")
def list_runs(
    session: SessionDep,
    rt: RuntimeDep,
    principal: PrincipalDep,
    status: Literal["done", "error", "skipped", "pending"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Each row: commit, key, command position, command and arguments, outcome and its message.

    Only runs of keys whose project the person may view development data of (docs/permissions.md).
    """
    return queries.smart_commits(session, status=status, limit=limit, projects=viewable_projects(rt, principal))
