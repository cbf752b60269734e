"""Error responses: the one renderer (``problem``) and how the OpenAPI document describes them.

Every error devlink answers is ``application/problem+json`` (RFC 9457) with
devlink's reason code as ``type``.  Routes declare the error statuses they can
answer with ``responses=problems(404, 409)``; ``document_problems`` then gives
each of those, and the statuses every operation can answer (400 from the host
check, 403 from the cross-site check and 413 from the body bound on writes, 422 when it takes input, 500),
the Problem schema with the problem+json media type, replacing FastAPI's
``HTTPValidationError`` (devlink never answers that shape).
"""

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

__all__ = ["PROBLEM_SCHEMA", "ROW_ID_MAX", "document_problems", "problem", "problems"]

#: The largest id a path may name: the databases' 64-bit signed integer.
ROW_ID_MAX = 2**63 - 1

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `type` is devlink's reason code (docs/api.md lists them)",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "reason code, e.g. not_found, conflict, invalid, bad_host"},
        "title": {"type": "string", "description": "what happened, for a person; never contains credentials"},
        "status": {"type": "integer", "description": "the HTTP status, repeated"},
        "hint": {"type": "string", "description": "what to do about it, when there is something to say"},
        "errors": {
            "type": "array",
            "description": "for type invalid: each field that was refused",
            "items": {
                "type": "object",
                "required": ["location", "message"],
                "properties": {"location": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_DESCRIPTIONS = {
    400: "refused request: bad_host (the Host header names no devlink), or a malformed delivery",
    401: "missing or unknown credential (bad_token, bad_signature)",
    403: "cross_site: a write another site's page made the browser send",
    404: "not_found: nothing with that id or name",
    409: "conflict: it exists already",
    413: "too_large: the body is over the limit",
    422: "invalid input (invalid, bad_key, bad_url, bad_name, …) or a host or git refusal",
    429: "rate_limited: the host's API budget is spent",
    500: "config or internal: a setting that does not work, or a bug (the server log has the details)",
    502: "the host failed (network, server)",
}
_REF = {"$ref": "#/components/schemas/Problem"}
_WRITES = {"post", "put", "patch", "delete"}


def problem(
    status: int, reason: str, title: str, hint: str | None = None, *, headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Every error the web layer sends: RFC 9457 problem details with devlink's reason as ``type``."""
    body: dict[str, Any] = {"type": reason, "title": title, "status": status, **extra}
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route decorator: the error statuses it answers besides the ones every route can."""
    return {status: {"description": _DESCRIPTIONS[status]} for status in statuses}


def document_problems(
    document: dict[str, Any], extra: Mapping[tuple[str, str], Mapping[int, str]] | None = None
) -> dict[str, Any]:
    """Give every error response of ``document`` the Problem schema (see the module docstring).

    ``extra``: statuses, with their description, of operations whose routes
    declare none themselves, keyed by (method, path).
    """
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            declared = (extra or {}).get((method, path), {})
            if any(300 <= status < 400 for status in declared):
                responses.pop("200", None)  # a route that only redirects: FastAPI assumed a 200
            for status, description in declared.items():
                responses.setdefault(str(status), {"description": description})
            statuses = [400, 500]
            if method in _WRITES and not path.startswith("/hooks/"):
                statuses += [403, 413]  # the cross-site check and the body bound (web/security.py)
            if operation.get("parameters") or operation.get("requestBody"):
                statuses.append(422)
            for status in statuses:
                responses.setdefault(str(status), {"description": _DESCRIPTIONS[status]})
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    response["content"] = {"application/problem+json": {"schema": _REF}}
                    if code == "422" and response.get("description") == "Validation Error":
                        response["description"] = _DESCRIPTIONS[422]
            operation["responses"] = dict(sorted(responses.items()))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    return document
