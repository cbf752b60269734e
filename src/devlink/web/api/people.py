"""``/api/v1/me``, ``/api/v1/users`` and ``/api/v1/tokens``: people, their roles and passwords, API tokens.

Admins manage everyone; a member sees only themselves and their own tokens
(``web/auth.py`` holds each route's rule).  A token's secret is in the answer
that made it and nowhere else.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from devlink.errors import Forbidden, InvalidInput
from devlink.sync.people import (
    MAX_TOKEN_DAYS,
    add_person,
    change_password,
    create_token,
    find_person,
    people_views,
    remove_person,
    revoke_token,
    set_role,
    token_views,
)
from devlink.web.deps import PrincipalDep, RowId, RuntimeDep, SessionDep
from devlink.web.responses import problems

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["people"])


class UserIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    username: str = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, max_length=200)
    emails: list[str] = Field(default=[], max_length=50)
    role: str = Field(default="member", description="admin or member")
    password: str | None = Field(default=None, max_length=1024, description="at least 10 characters; without "
                                 "one the person cannot sign in until it is set")


class UserPatch(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    role: str = Field(description="admin or member")


class PasswordIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    password: str = Field(max_length=1024, description="the new password, at least 10 characters")
    current: str = Field(default="", max_length=1024, description="your current password (changing your own)")


class TokenIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    user: str | None = Field(default=None, max_length=100, description="admins: make it for this person")
    read_only: bool = Field(default=False, description="GET and HEAD only")
    expires_days: int | None = Field(default=None, ge=1, le=MAX_TOKEN_DAYS)


@router.get("/me")
def me(principal: PrincipalDep, session: SessionDep) -> dict[str, Any]:
    """The person the request acts for, and how (session or token, read-only or not)."""
    return {**find_person(session, principal, principal.username), "read_only": principal.read_only,
            "via": "token" if principal.token_id is not None else "session"}


@router.get("/users")
def list_users(principal: PrincipalDep, session: SessionDep) -> list[dict[str, Any]]:
    """Everyone, for an admin; a member gets only themselves."""
    return people_views(session, principal)


@router.post("/users", status_code=status.HTTP_201_CREATED, responses=problems(409))
def add_user(body: UserIn, rt: RuntimeDep) -> dict[str, Any]:
    return add_person(rt, body.username, name=body.name, emails=body.emails, role=body.role, password=body.password)


@router.get("/users/{username}", responses=problems(404))
def get_user(username: str, principal: PrincipalDep, session: SessionDep) -> dict[str, Any]:
    return find_person(session, principal, username)


@router.patch("/users/{username}", responses=problems(404, 409))
def patch_user(username: str, body: UserPatch, rt: RuntimeDep) -> dict[str, Any]:
    """Change the role; the last admin who can sign in stays an admin (409)."""
    return set_role(rt, username, body.role)


@router.delete("/users/{username}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 409))
def delete_user(username: str, rt: RuntimeDep, principal: PrincipalDep) -> Response:
    """Take away sign-in: sessions and tokens end; the tracker keeps the person for its history."""
    if principal.username == username:
        raise InvalidInput("you cannot remove yourself; another admin can", reason="self")
    remove_person(rt, username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/users/{username}/password", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401, 404))
def put_password(username: str, body: PasswordIn, rt: RuntimeDep, principal: PrincipalDep,
                 session: SessionDep) -> Response:
    """Your own (with ``current``), or, as an admin, anyone's; the person's other sign-ins end."""
    find_person(session, principal, username)  # 404 for a member naming someone else
    change_password(rt, principal, username, body.password, current=body.current)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/tokens", responses=problems(404))
def list_tokens(principal: PrincipalDep, session: SessionDep,
                user: Annotated[str | None, Query(max_length=100, description="admins: another person's")] = None,
                ) -> list[dict[str, Any]]:
    """Your tokens (an admin may name a person), with last use; never the secrets."""
    return token_views(session, principal, user or principal.username)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, responses=problems(404, 409))
def add_token(body: TokenIn, rt: RuntimeDep, principal: PrincipalDep, response: Response) -> dict[str, Any]:
    """A new token; ``token`` in this answer is the only time its secret is shown."""
    owner = body.user or principal.username
    if owner != principal.username and not principal.admin:
        raise Forbidden("only an admin may make a token for someone else", reason="admin_only")
    made = create_token(rt, owner, body.name, read_only=body.read_only, expires_days=body.expires_days)
    response.headers["Cache-Control"] = "no-store"
    return {**made.view, "token": made.secret}


@router.delete("/tokens/{token_id}", responses=problems(404))
def delete_token(token_id: RowId, rt: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Revoke: the token stops working at once and stays listed as revoked."""
    return revoke_token(rt, principal, token_id)
