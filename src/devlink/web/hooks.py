"""``POST /hooks/{kind}``: push notifications from plain git servers and from every host kind.

Order, as for every host: authenticate from the headers, bound the size, read
the body, verify it, parse it, record (dedupe on the delivery id), enqueue,
answer 202.  Nothing of a stranger's body is parsed.  The body is never trusted
to be complete: the sync fetches whatever changed.

Plain git servers call ``/hooks/git`` from a ``post-receive`` hook (``devlink
repo hook``) with the repository's token in ``X-Devlink-Token`` (or
``Authorization: Bearer``).  The optional body is what post-receive reads on
stdin, ``<old-sha> <new-sha> <ref>`` per line; an optional
``X-Devlink-Delivery`` header makes retries idempotent.  Delivery ids are the
client's own, so they are scoped to the repository: stored as
``<repository id>/<id>``, answered as sent.
"""

import io
import logging
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import update
from starlette.concurrency import run_in_threadpool

from devlink.errors import DeliveryError, NotFound
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import WebhookDelivery, table, utcnow
from devlink.sync.repositories import repository_for_token
from devlink.sync.webhooks import host_kind_for_hooks, incoming, receive, verify_headers
from devlink.web.deps import RuntimeDep

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/hooks", tags=["webhooks"])

MAX_BODY = 256 * 1024
_LINE = re.compile(r"^[0-9a-f]{40,64} [0-9a-f]{40,64} refs/\S+$")
# 128 characters, so ``<repository id>/<id>`` fits webhook_deliveries.delivery_id (String(200))
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class Unauthorized(DeliveryError):
    status = 401
    default_reason = "bad_token"


class TooLarge(DeliveryError):
    status = 413
    default_reason = "too_large"


def _token(request: Request) -> str:
    token = request.headers.get("x-devlink-token", "")
    authorization = request.headers.get("authorization", "")
    if not token and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if not token:
        raise Unauthorized("missing token: send it in the X-Devlink-Token header")
    return token


@router.post("/git", status_code=status.HTTP_202_ACCEPTED)
async def git_push(request: Request, rt: RuntimeDep) -> JSONResponse:
    """Queue a soft sync of the repository the token belongs to.

    Guards in order, each with its own status: token (401), delivery id
    header (400), size (413), body (400), then record and enqueue (202).
    """
    repository_id, name = await run_in_threadpool(_authenticate, rt, _token(request))
    delivery_id = request.headers.get("x-devlink-delivery") or str(uuid.uuid4())
    if not _DELIVERY_ID.match(delivery_id):
        raise DeliveryError("X-Devlink-Delivery must be 1-128 letters, digits or ._:-", reason="bad_delivery_id")
    body = await _read_body(request, MAX_BODY)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DeliveryError("body is not UTF-8 text", reason="bad_body") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    bad = [line for line in lines if not _LINE.match(line)]
    if bad:
        raise DeliveryError(
            f"body line {bad[0][:80]!r} is not '<old-sha> <new-sha> <ref>' (what post-receive reads)",
            reason="bad_body",
        )
    result = await run_in_threadpool(_accept, rt, repository_id, name, delivery_id, "\n".join(lines))
    return JSONResponse(result, status_code=status.HTTP_202_ACCEPTED)


def _authenticate(rt: Runtime, token: str) -> tuple[int, str]:
    with rt.sessions() as session:
        repository = repository_for_token(session, token)
        if repository is None:
            log.info("hook.git.bad_token")
            raise Unauthorized("unknown token")
        if not repository.linked:
            raise NotFound(f"repository {repository.name!r} is not linked")
        return repository.id, repository.name


def _accept(rt: Runtime, repository_id: int, name: str, delivery_id: str, payload: str) -> dict[str, Any]:
    """Record once per repository and id (another repository's ``push-42`` is not a replay), then queue."""
    stored_id = f"{repository_id}/{delivery_id}"
    with rt.sessions.begin() as session:
        fresh = insert_ignore(
            session,
            table(WebhookDelivery),
            [{"host_kind": "git", "delivery_id": stored_id, "repository_id": repository_id, "event": "push",
              "payload": payload, "received_at": utcnow()}],
            ["host_kind", "delivery_id"],
        )
    if not fresh:
        log.info("hook.git.duplicate delivery=%s", delivery_id)
        return {"status": "duplicate", "delivery": delivery_id, "repository": name}
    outcome = rt.queue.request_sync(repository_id, full=False, trigger="hook")
    with rt.sessions.begin() as session:
        session.execute(update(WebhookDelivery).where(
            WebhookDelivery.host_kind == "git", WebhookDelivery.delivery_id == stored_id
        ).values(processed_at=utcnow()))
    log.info("hook.git.accepted repository=%s delivery=%s sync=%s", repository_id, delivery_id, outcome)
    return {"status": outcome, "delivery": delivery_id, "repository": name}


@router.post("/{kind}", status_code=status.HTTP_202_ACCEPTED)
async def host_delivery(kind: str, request: Request, rt: RuntimeDep) -> JSONResponse:
    """A host's webhook delivery (``kind`` as in ``GET /api/v1/hosts``): headers and the hook they name
    (400/401), size (413), secret (401), JSON (400), record once, act, 202.  The body is read only for a
    hook devlink knows."""
    host = host_kind_for_hooks(kind)
    query = dict(request.query_params)
    found = await run_in_threadpool(incoming, rt, host, request.headers, query)
    signer = await run_in_threadpool(verify_headers, rt, found)  # a header secret: checked before the body
    body = await _read_body(request, host.max_body)
    result = await run_in_threadpool(receive, rt, rt.queue, found, body, signer)
    return JSONResponse(result, status_code=status.HTTP_202_ACCEPTED)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge(f"body too large: at most {limit} bytes")
    body = io.BytesIO()  # getvalue() hands over its buffer, so a large body is held once, not copied
    async for chunk in request.stream():
        if body.tell() + len(chunk) > limit:
            raise TooLarge(f"body too large: at most {limit} bytes")
        body.write(chunk)
    return body.getvalue()
