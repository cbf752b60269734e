"""``/api/v1/issues/{key}/development``: the development panel's document."""

from typing import Any

from fastapi import APIRouter

from devlink.domain.issue_keys import is_key
from devlink.errors import InvalidInput
from devlink.store import queries
from devlink.web.deps import SessionDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/issues", tags=["issues"])


@router.get("/{key}/development")
def development(key: str, session: SessionDep) -> dict[str, Any]:
    """Summary counts, commits (newest first), branches and pull requests linked to ``key``."""
    if not is_key(key):
        raise InvalidInput(f"{key!r} is not an issue key (like ABC-123)", reason="bad_key")
    return queries.development(session, key)
