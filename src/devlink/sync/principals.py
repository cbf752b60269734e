"""Who is asking: the ``Principal`` every route and service call that depends on a person receives.

A principal comes from a sign-in session, an API token, or the command line on
devlink's own machine (``LOCAL_ADMIN``: the CLI acts as a local administrator
through the database, as it always has).
"""

from dataclasses import dataclass
from typing import Literal

__all__ = ["LOCAL_ADMIN", "ROLES", "Principal", "Role"]

Role = Literal["admin", "member"]
ROLES: tuple[Role, ...] = ("admin", "member")


@dataclass(frozen=True)
class Principal:
    """``user_id`` None only for ``LOCAL_ADMIN``; ``read_only``: a read-only API token (safe methods only)."""

    user_id: int | None
    username: str
    role: Role
    read_only: bool = False
    token_id: int | None = None
    session_id: int | None = None

    @property
    def admin(self) -> bool:
        return self.role == "admin"


LOCAL_ADMIN = Principal(user_id=None, username="(local)", role="admin")
