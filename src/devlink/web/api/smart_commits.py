"""``/api/v1/smart-commits``: the ledger of executed smart-commit commands, newest first."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from devlink.store import queries
from devlink.web.deps import SessionDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/smart-commits", tags=["smart commits"])


@router.get("")
def list_runs(
    session: SessionDep,
    status: Literal["done", "error", "skipped", "pending"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Each row: commit, key, command position, command and arguments, outcome and its message."""
    return queries.smart_commits(session, status=status, limit=limit)
