"""The sign-in page, sign-out, the users page (admins) and each person's page (their tokens and password).

Forms post and redirect back (post/redirect/get), except where a secret is
shown once (a new token, a new user's password): that page is the answer to
the post itself, so the secret is never in a URL or a later page.
"""

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from devlink.errors import DevlinkError, InvalidInput
from devlink.sync.people import (
    NewToken,
    add_person,
    change_password,
    create_token,
    end_session,
    find_person,
    generate_password,
    own_or_admin,
    people_views,
    remove_person,
    revoke_token,
    set_role,
    sign_in,
    token_views,
)
from devlink.sync.principals import Principal
from devlink.web.auth import clear_cookie, set_cookie
from devlink.web.deps import PrincipalDep, RowId, RuntimeDep, SessionDep
from devlink.web.pages import templates

__all__ = ["client_address", "router", "safe_next"]

router = APIRouter(include_in_schema=False)


def safe_next(target: str) -> str:
    """Where to go after signing in: a path on devlink only (``//evil.example`` and ``https://…`` are not)."""
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


def client_address(request: Request) -> str:
    """The peer address the throttle counts: behind a proxy, DEVLINK_FORWARDED_ALLOW_IPS makes it the client's."""
    return request.client.host if request.client else "unknown"


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "/") -> Response:
    if getattr(request.state, "principal", None) is not None:
        return RedirectResponse(safe_next(next), status_code=status.HTTP_302_FOUND)
    return templates.TemplateResponse(request, "sign_in.html", {"next": safe_next(next), "username": ""})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in_form(
    request: Request,
    rt: RuntimeDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    try:
        _principal, token = sign_in(rt, username, password, client_address(request))
    except DevlinkError as exc:
        headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
        return templates.TemplateResponse(
            request, "sign_in.html", {"next": safe_next(next), "username": username, "error": exc.message},
            status_code=exc.status, headers=headers)
    response = RedirectResponse(safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    set_cookie(response, request, token)
    return response


@router.post("/sign-out")
def sign_out(request: Request, rt: RuntimeDep, principal: PrincipalDep) -> Response:
    if principal.session_id is not None:
        end_session(rt, principal.session_id)
    response = RedirectResponse("/sign-in", status_code=status.HTTP_303_SEE_OTHER)
    clear_cookie(response, request)
    return response


def _users_page(request: Request, session: Any, principal: Principal, *, error: str | None = None,
                created: dict[str, str] | None = None, code: int = 200) -> Response:
    return templates.TemplateResponse(
        request, "users.html", {"people": people_views(session, principal), "error": error, "created": created},
        status_code=code)


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    return _users_page(request, session, principal)


@router.post("/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    principal: PrincipalDep,
    username: Annotated[str, Form(max_length=100)],
    name: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    admin: Annotated[str, Form()] = "",
) -> Response:
    """A new person with a generated password, shown on this answer only."""
    password = generate_password()
    try:
        add_person(rt, username.strip(), name=name.strip() or None, emails=[email] if email.strip() else [],
                   role="admin" if admin == "1" else "member", password=password)
    except DevlinkError as exc:
        return _users_page(request, session, principal, error=exc.message, code=exc.status)
    return _users_page(request, session, principal, created={"username": username.strip(), "password": password},
                       code=status.HTTP_201_CREATED)


def _user_page(request: Request, session: Any, principal: Principal, username: str, *, error: str | None = None,
               notice: str | None = None, new_token: NewToken | None = None, code: int = 200) -> Response:
    person = find_person(session, principal, username)
    return templates.TemplateResponse(request, "user.html", {
        "person": person, "tokens": token_views(session, principal, username), "own": principal.username == username,
        "error": error, "notice": notice, "new_token": new_token}, status_code=code)


@router.get("/users/{username}", response_class=HTMLResponse)
def user(request: Request, username: str, session: SessionDep, principal: PrincipalDep) -> Response:
    return _user_page(request, session, principal, username)


@router.post("/users/{username}/tokens", response_class=HTMLResponse)
def new_token(
    request: Request,
    username: str,
    rt: RuntimeDep,
    session: SessionDep,
    principal: PrincipalDep,
    name: Annotated[str, Form(max_length=100)],
    read_only: Annotated[str, Form()] = "",
    expires: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    own_or_admin(principal, username)
    try:
        days = int(expires) if expires.strip() else None
    except ValueError:
        return _user_page(request, session, principal, username, error="expiry must be a number of days", code=422)
    try:
        made = create_token(rt, username, name, read_only=read_only == "1", expires_days=days)
    except DevlinkError as exc:
        return _user_page(request, session, principal, username, error=exc.message, code=exc.status)
    return _user_page(request, session, principal, username, new_token=made, code=status.HTTP_201_CREATED)


@router.post("/users/{username}/tokens/{token_id}/revoke")
def revoke(username: str, token_id: RowId, rt: RuntimeDep, principal: PrincipalDep) -> Response:
    own_or_admin(principal, username)
    revoke_token(rt, principal, token_id)
    return RedirectResponse(f"/users/{username}", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/users/{username}/password", response_class=HTMLResponse)
def password(
    request: Request,
    username: str,
    rt: RuntimeDep,
    session: SessionDep,
    principal: PrincipalDep,
    password: Annotated[str, Form(max_length=1024)],
    current: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Change one's own password (with the current one), or, as an admin, anyone's."""
    own_or_admin(principal, username)
    try:
        change_password(rt, principal, username, password, current=current)
    except DevlinkError as exc:
        return _user_page(request, session, principal, username, error=exc.message, code=exc.status)
    return _user_page(request, session, principal, username, notice="Password changed; other sign-ins ended.")


@router.post("/users/{username}/role")
def role(username: str, rt: RuntimeDep, role: Annotated[str, Form(max_length=16)]) -> Response:
    set_role(rt, username, role)
    return RedirectResponse(f"/users/{username}", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/users/{username}/remove")
def remove(username: str, rt: RuntimeDep, principal: PrincipalDep) -> Response:
    if principal.username == username:
        raise InvalidInput("you cannot remove yourself; another admin can", reason="self")
    remove_person(rt, username)
    return RedirectResponse("/users", status_code=status.HTTP_303_SEE_OTHER)
