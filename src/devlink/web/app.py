"""``create_app``: the FastAPI application, its routers, its one error renderer and its lifespan.

With ``embedded_worker=True`` (``devlink serve``), the lifespan starts the
Huey consumer in threads of this process and stops it on shutdown.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from devlink import __version__
from devlink.errors import DevlinkError
from devlink.runtime import Runtime
from devlink.web import hooks, pages
from devlink.web.api import issues, repositories

__all__ = ["create_app"]

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
    app.include_router(repositories.router)
    app.include_router(issues.router)
    app.include_router(hooks.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.exception_handler(DevlinkError)
    async def devlink_error(request: Request, exc: DevlinkError) -> JSONResponse:
        body = {"type": exc.reason, "title": exc.message, "status": exc.status}
        if exc.hint:
            body["hint"] = exc.hint
        return JSONResponse(body, status_code=exc.status, media_type="application/problem+json")

    return app
