"""``create_app``: the FastAPI application, its routers, its error renderers, its OpenAPI document, its lifespan.

With ``embedded_worker=True`` (``devlink serve``), the lifespan starts the
Huey consumer in threads of this process and stops it on shutdown.  Every
request first passes ``security.RequestGuard`` (trusted hosts, cross-site
writes, security headers).
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from devlink import __version__
from devlink.errors import DevlinkError, Unauthorized
from devlink.runtime import Runtime
from devlink.web import account_pages, hooks, oauth, pages, people_pages
from devlink.web.api import accounts, hosts, issues, people, repositories, smart_commits, tracker
from devlink.web.auth import authorize, document_access
from devlink.web.pages import error_page, wants_page
from devlink.web.responses import document_problems, problem
from devlink.web.security import SECURITY_HEADERS, RequestGuard, allowed_hosts

__all__ = ["ROUTERS", "create_app", "problem"]

#: Every router, in the order they match; ``web/auth.py`` has an access rule for each of their routes.
ROUTERS = (accounts.router, hosts.router, repositories.router, issues.router, tracker.router, people.router,
           smart_commits.router, hooks.router, oauth.router, pages.router, people_pages.router, account_pages.router)

#: Error statuses of routes defined outside the files that declare theirs with ``problems()``.
_UNDECLARED: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/hooks/git"): {400: "bad_body, bad_delivery_id", 401: "bad_token: no token, or an unknown one",
                             404: "not_found: the token's repository is not linked", 413: "too_large"},
    ("post", "/hooks/{kind}"): {400: "bad_event, bad_delivery_id, bad_json, bad_payload",
                                401: "bad_signature, unknown_hook", 404: "not_found: no such host kind",
                                413: "too_large"},
}

log = logging.getLogger(__name__)


def create_app(rt: Runtime, *, embedded_worker: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        consumer = None
        if embedded_worker:
            consumer = rt.queue.consumer(rt.settings.workers)
            consumer.start()
            log.info("queue.consumer_started workers=%d", rt.settings.workers)
        try:
            yield
        finally:
            if consumer is not None:
                consumer.stop(graceful=True)
            rt.close()

    app = FastAPI(
        title="devlink",
        version=__version__,
        summary="Commits, branches and pull requests per issue key.",
        lifespan=lifespan,
        docs_url=None,  # pages.py serves /docs from devlink's own files; FastAPI's loads a CDN
        redoc_url=None,
        dependencies=[Depends(authorize)],  # every route: who is asking, and may they (web/auth.py)
    )
    app.state.runtime = rt
    app.add_middleware(RequestGuard, hosts=allowed_hosts(rt.settings))
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.exception_handler(DevlinkError)
    async def devlink_error(request: Request, exc: DevlinkError) -> Response:
        headers: dict[str, str] = {}
        if isinstance(exc, Unauthorized):
            if wants_page(request) and request.method in ("GET", "HEAD"):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)
            headers["WWW-Authenticate"] = 'Bearer realm="devlink"'
        if (retry_after := getattr(exc, "retry_after", None)) is not None:
            headers["Retry-After"] = str(retry_after)
        if wants_page(request):
            return error_page(request, exc.status, exc.message, exc.hint, headers=headers)
        return problem(exc.status, exc.reason, exc.message, exc.hint, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code)
        if exc.status_code == 405:
            # Starlette's Allow names the first route of the path only; GET and POST are often two routes
            allow = {"Allow": _allowed_methods(request)}
            if wants_page(request):  # a form's answer reloaded, or its address opened: say where to go
                return error_page(request, 405, "This address only takes a form's answer; go back to the page "
                                  "with the form.", headers=allow)
            return problem(405, "method_not_allowed", f"{request.method} is not allowed here", headers=allow)
        if wants_page(request):
            message = "There is no page at this address." if exc.status_code == 404 else str(exc.detail)
            return error_page(request, exc.status_code, message, headers=exc.headers)
        reason = "not_found" if exc.status_code == 404 else "http_error"
        return problem(exc.status_code, reason, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"location": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        title = "; ".join(f"{e['location']}: {e['message']}" for e in errors) or "invalid request"
        if wants_page(request):
            return error_page(request, 422, title)
        return problem(422, "invalid", title, errors=errors)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette sends this one outside every middleware, so it carries the security headers itself;
        # the exception goes on to the server, which logs its traceback.
        return problem(500, "internal", "internal error; the server log has the details", headers=SECURITY_HEADERS)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            app.openapi_schema = document_access(document_problems(document, _UNDECLARED))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route answers at this path (what ``Allow`` must list with a 405).

    Asked of the routes with their public ``matches``, one method at a time (included routers do not
    expose their routes' methods).
    """
    routes = request.app.router.routes
    allowed = [m for m in _METHODS
               if any(route.matches({**request.scope, "method": m})[0] is Match.FULL for route in routes)]
    return ", ".join(allowed)
