"""Server-rendered pages: the repository list with sync state, an issue's development panel, the API page.

Plain HTML forms post to these routes and redirect back (post/redirect/get),
so every page works without JavaScript; a page with a sync in progress
refreshes itself every few seconds.  Cross-site posts and foreign Host names
are refused before any route runs (``security.RequestGuard``).  ``/docs`` is
Swagger UI served from devlink itself (the ``swagger-ui-bundle-v2`` package),
so it works offline and under the Content-Security-Policy.
"""

from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from swagger_ui_bundle import swagger_ui_path

from devlink.domain.issue_keys import extract_keys, is_key, project_key
from devlink.domain.remotes import redact
from devlink.domain.text import http_url
from devlink.errors import DevlinkError, Forbidden, InvalidInput, NotFound
from devlink.runtime import Runtime
from devlink.store import queries
from devlink.store.models import Repository
from devlink.sync.access import (
    browsable_projects,
    development_access,
    may_sync,
    outside_issue,
    set_repository_projects,
    viewable_projects,
    visible_repository,
    visible_repository_ids,
)
from devlink.sync.principals import Principal
from devlink.sync.repositories import add_repository, remove_repository
from devlink.trackers.builtin import ISSUE_PAGE_SIZE, issue_view
from devlink.web.auth import csrf_token
from devlink.web.deps import PrincipalDep, RowId, RuntimeDep, SessionDep

__all__ = ["error_page", "router", "safe_href", "templates", "wants_page"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

#: Paths whose errors are always problem documents: the API, the webhooks, files and the OpenAPI document.
_MACHINE_PATHS = ("/api/", "/hooks/", "/static/", "/openapi.json")


def wants_page(request: Request) -> bool:
    """Whether an error should be a page: a browser asking for anything but the API (``Accept`` names HTML)."""
    path = request.url.path
    machine = path.startswith(_MACHINE_PATHS) or f"{path}/" in _MACHINE_PATHS
    return not machine and "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status_code: int, message: str, hint: str | None = None, *,
               headers: Mapping[str, str] | None = None) -> Response:
    """The HTML form of a problem, for a person who mistyped a URL or posted a form that could not work."""
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:  # a status without a standard phrase
        phrase = "Error"
    return templates.TemplateResponse(
        request, "error.html", {"status": status_code, "phrase": phrase, "message": message, "hint": hint},
        status_code=status_code, headers={**(headers or {}), "Vary": "Accept"},  # the same URL answers JSON too
    )


#: The Swagger UI files /docs loads; nothing else of the package is served.
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")


def _when(iso: str | None) -> str:
    """An ISO time as the pages show it: ``2026-11-23 20:50:58`` (UTC), or nothing."""
    return (iso or "")[:19].replace("T", " ")


def safe_href(url: str | None) -> str:
    """``url`` if it is an http(s) URL, else ``""``: a host's ``html_url`` may be ``javascript:…``.

    Templates link stored URLs only through this filter and show plain text
    when it yields nothing.
    """
    return http_url(url) or ""


templates.env.filters["when"] = _when
templates.env.filters["safe_href"] = safe_href
templates.env.globals["csrf_token"] = csrf_token


def _group_by_repository(commits: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    groups: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for commit in commits:
        repo = commit["repository"]
        groups.setdefault(repo["id"], (repo, []))[1].append(commit)
    return list(groups.values())


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/repositories", status_code=status.HTTP_302_FOUND)


def _repositories_page(
    request: Request, session: Any, rt: Runtime, principal: Principal, error: str | None = None, code: int = 200,
    typed: dict[str, str] | None = None,
) -> Response:
    """``typed``: what the form held when it was refused, shown again so nothing has to be retyped.

    A member sees only the repositories they may see (docs/permissions.md).
    """
    linked = select(Repository).where(Repository.linked.is_(True)).order_by(Repository.name)
    visible = visible_repository_ids(rt, principal)
    if visible is not None:
        linked = linked.where(Repository.id.in_(sorted(visible)))
    views = queries.repository_views(session, session.scalars(linked))
    busy = any(v["sync"]["state"] in ("queued", "running") for v in views)
    return templates.TemplateResponse(
        request, "repositories.html",
        {"repositories": views, "busy": busy, "error": error, "typed": typed or {}, "admin": principal.admin},
        status_code=code,
    )


@router.get("/repositories", response_class=HTMLResponse)
def repositories(request: Request, session: SessionDep, rt: RuntimeDep, principal: PrincipalDep) -> Response:
    return _repositories_page(request, session, rt, principal)


@router.post("/repositories", response_class=HTMLResponse)
def add(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    principal: PrincipalDep,
    url: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
) -> Response:
    try:
        repository = add_repository(rt, url, name=name.strip() or None, local_roots=rt.settings.local_repository_roots)
    except DevlinkError as exc:
        return _repositories_page(request, session, rt, principal, error=exc.message, code=exc.status,
                                  typed={"url": redact(url), "name": name})  # a password is never echoed
    rt.queue.request_sync(repository.id, full=False, trigger="manual")
    return RedirectResponse("/repositories", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/repositories/{repository_id}/sync")
def sync(repository_id: RowId, rt: RuntimeDep, session: SessionDep, principal: PrincipalDep,
         full: Annotated[str, Form()] = "") -> Response:
    repository = visible_repository(rt, session, principal, repository_id)  # 404 for one the person cannot see
    may_sync(principal, full=full == "1")
    rt.queue.request_sync(repository.id, full=full == "1", trigger="manual")
    return RedirectResponse("/repositories", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/repositories/{repository_id}/projects", response_class=HTMLResponse)
def scope(request: Request, repository_id: RowId, rt: RuntimeDep, session: SessionDep, principal: PrincipalDep,
          projects: Annotated[str, Form()] = "") -> Response:
    """Scope a repository to the comma-separated project keys; empty: every project (admins only)."""
    if not principal.admin:  # the sign-in layer's role rules cover the other writes; this one is new here
        visible_repository(rt, session, principal, repository_id)  # 404 first, so ids do not leak
        raise Forbidden("only an admin may choose the projects a repository serves")
    keys = [key.strip().upper() for key in projects.split(",") if key.strip()]
    try:
        set_repository_projects(rt, repository_id, keys)
    except InvalidInput as exc:
        return _repositories_page(request, session, rt, principal, error=exc.message, code=exc.status)
    return RedirectResponse("/repositories", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/repositories/{repository_id}/remove")
def remove(repository_id: RowId, rt: RuntimeDep) -> Response:
    remove_repository(rt, repository_id)
    return RedirectResponse("/repositories", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/issues", response_class=HTMLResponse)
def find_issue(request: Request, key: str = "") -> Response:
    found = extract_keys(key.strip().upper())
    if found:
        return RedirectResponse(f"/issues/{found[0]}", status_code=status.HTTP_302_FOUND)
    error = f"{key!r} is not an issue key (like ABC-123)" if key else None
    return templates.TemplateResponse(request, "search.html", {"error": error}, status_code=422 if key else 200)


_MAX_PAGE = 10_000_000  # past any list; a bigger page number is refused, not turned into a huge offset


@router.get("/issues/{key}", response_class=HTMLResponse)
def issue(
    request: Request,
    key: str,
    session: SessionDep,
    rt: RuntimeDep,
    principal: PrincipalDep,
    comments_page: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 1,
    worklogs_page: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 1,
    history_page: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 1,
) -> Response:
    """The issue (when the tracker has it) above its development panel; each list shows one page, newest first."""
    if not is_key(key):
        if is_key(key.upper()):  # demo-1: the key the CLI would suggest, as /issues?key= does
            query = f"?{request.url.query}" if request.url.query else ""
            return RedirectResponse(f"/issues/{key.upper()}{query}", status_code=status.HTTP_307_TEMPORARY_REDIRECT)
        return templates.TemplateResponse(
            request, "search.html", {"error": f"{key!r} is not an issue key (like ABC-123)"}, status_code=404
        )
    access = development_access(rt, principal, project_key(key))
    document = queries.development(session, key) if access.allowed else _withheld(key)
    wanted = {"comments": comments_page, "worklogs": worklogs_page, "history": history_page}
    browsable = browsable_projects(session, principal)
    try:
        if browsable is not None and project_key(key) not in browsable:
            raise NotFound(key)  # the built-in tracker's browse permission: shown as an issue it does not have
        tracked: dict[str, Any] | None = issue_view(
            session, key, offsets={name: (page - 1) * ISSUE_PAGE_SIZE for name, page in wanted.items()}
        )
    except NotFound:
        tracked = None
    pages = _list_pages(request, tracked["totals"], wanted) if tracked else {}
    outside = outside_issue(rt, principal, key)  # Jira's summary, status and assignee; a note when it cannot say
    return templates.TemplateResponse(
        request,
        "issue.html",
        {"doc": document, "issue": None if outside else tracked, "outside": outside, "pages": pages,
         "groups": _group_by_repository(document["commits"]), "withheld": None if access.allowed else access.note},
    )


def _withheld(key: str) -> dict[str, Any]:
    """An empty development document, for a person who may not see it: nothing of it reaches the template."""
    return {"key": key, "project_known": True, "notice": None, "commits": [], "branches": [], "pull_requests": [],
            "summary": {"commits": 0, "branches": 0, "pull_requests": 0, "pull_request_states": {},
                        "repositories": 0, "latest_commit_at": None}}


def _list_pages(request: Request, totals: dict[str, int], wanted: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per list: its total, which entries this page shows (1 = the newest) and links to newer and older pages."""
    pages: dict[str, dict[str, Any]] = {}
    for name, page in wanted.items():
        total = totals[name]
        newest = (page - 1) * ISSUE_PAGE_SIZE + 1  # counted from the newest entry
        oldest = min(page * ISSUE_PAGE_SIZE, total)

        def link(to: int, name: str = name) -> str:
            return "?" + urlencode({**request.query_params, f"{name}_page": str(to)})

        pages[name] = {
            "total": total,
            "newest": newest,
            "oldest": oldest,
            "paged": total > ISSUE_PAGE_SIZE or page > 1,
            "newer": link(page - 1) if page > 1 else None,
            "older": link(page + 1) if oldest < total else None,
            "first": link(1) if page > 1 else None,
        }
    return pages


@router.get("/smart-commits", response_class=HTMLResponse)
def smart_commit_runs(request: Request, session: SessionDep, rt: RuntimeDep, principal: PrincipalDep,
                      status: str = "error") -> Response:
    """Recent smart-commit results, errors by default, with the commit, the key and the reason.

    Only runs of keys whose project the person may view development data of.
    """
    wanted = status if status in ("done", "error", "skipped", "pending") else None
    runs = queries.smart_commits(session, status=wanted, limit=200, projects=viewable_projects(rt, principal))
    return templates.TemplateResponse(request, "smart_commits.html", {"runs": runs, "status": wanted or "all"})


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    """The OpenAPI page: Swagger UI from devlink's own files, started by ``static/docs.js`` (no inline script)."""
    return templates.TemplateResponse(request, "docs.html", {})


@router.get("/docs/assets/{name}")
def swagger_ui_file(name: str) -> FileResponse:
    if name not in SWAGGER_UI_FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file {name!r}")
    return FileResponse(Path(str(swagger_ui_path)) / name)
