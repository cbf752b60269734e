"""``create_app``: the FastAPI application, its routers, its one error renderer and its lifespan.

With ``embedded_worker=True`` (``devlink serve``), the lifespan starts the
Huey consumer in threads of this process and stops it on shutdown.
"""

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from devlink import __version__
from devlink.errors import DevlinkError
from devlink.runtime import Runtime
from devlink.web import account_pages, hooks, oauth, pages
from devlink.web.api import accounts, hosts, issues, repositories, smart_commits, tracker

__all__ = ["create_app", "problem"]

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
    )
    app.state.runtime = rt
    app.include_router(accounts.router)
    app.include_router(hosts.router)
    app.include_router(repositories.router)
    app.include_router(issues.router)
    app.include_router(tracker.router)
    app.include_router(smart_commits.router)
    app.include_router(hooks.router)
    app.include_router(oauth.router)
    app.include_router(pages.router)
    app.include_router(account_pages.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.exception_handler(DevlinkError)
    async def devlink_error(request: Request, exc: DevlinkError) -> JSONResponse:
        return problem(exc.status, exc.reason, exc.message, exc.hint)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code)
        reason = "not_found" if exc.status_code == 404 else "http_error"
        return problem(exc.status_code, reason, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        title = "; ".join(f"{e['location']}: {e['message']}" for e in errors) or "invalid request"
        return problem(422, "invalid", title, errors=errors)

    return app


def problem(
    status: int, reason: str, title: str, hint: str | None = None, *, headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Every error the web layer sends: RFC 9457 problem details with devlink's reason as ``type``."""
    body: dict[str, Any] = {"type": reason, "title": title, "status": status, **extra}
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)
