"""Development data in Jira: Cloud's development information API (0.10), Data Center's remote issue links.

Jira Cloud takes commits, branches and pull requests through devinfo
``bulk``, authenticated with an OAuth client-credentials token of Atlassian's
API gateway (the OAuth credentials Jira Cloud issues for on-premises tools).
Each request stays within the documented limits: at most 400 entities of a
type per repository, 1,000 in all, 100 issue keys per entity, messages of
1,024 characters, URLs of 2,000.  ``preventTransitions`` is always set:
devlink runs smart commits itself, once.

Jira Data Center has no such API, so each issue gets remote links: one per
branch and pull request that mentions it (state in the title) and one to its
devlink development page with the counts, each under a ``globalId`` so that a
re-send updates the link instead of adding one.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from devlink.errors import InvalidInput, TrackerError
from devlink.trackers.base import DevEntity, DevRepository, TrackerSettings
from devlink.trackers.jira import JiraClient, http_client

__all__ = ["DEFAULT_GATEWAY", "DevInfoSink", "RemoteLinkSink", "fetch_token"]

DEFAULT_GATEWAY = "https://api.atlassian.com"
MAX_KEYS = 100
MAX_PER_TYPE = 400
_DEVINFO_ID = re.compile(r"[A-Za-z0-9~._-]{1,255}")
_PR_STATUS = {"open": "OPEN", "draft": "OPEN", "merged": "MERGED", "closed": "DECLINED"}
_APPROVAL = {"approved": "APPROVED", "changes_requested": "NEEDSWORK"}


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return _iso(datetime.now(UTC))


def _cut(text: Any, limit: int) -> str:
    return str(text or "")[:limit]


class _Gateway(JiraClient):
    """``JiraClient``'s bounded, retrying calls against Atlassian's API gateway with a bearer token."""

    label = "the devinfo gateway"

    def __init__(self, gateway: str, cloud_id: str, settings: TrackerSettings) -> None:
        self.site = gateway.rstrip("/")
        self.cloud = True
        # the base on-premises integrations use, per the Jira Software Cloud document: devinfo 0.10 at
        # /rest/devinfo/0.10 on the site becomes /jira/devinfo/0.1/cloud/{cloudId} on the gateway
        self.api = f"{self.site}/jira/devinfo/0.1/cloud/{cloud_id}"
        self._timeout = settings.timeout
        self._sleep, self._budget = time.sleep, 30.0
        self._http = http_client(settings)

    def authorise(self, token: str) -> None:
        self._http.headers["Authorization"] = f"Bearer {token}"


def fetch_token(gateway: str, client_id: str, client_secret: str, settings: TrackerSettings) -> tuple[str, float]:
    """A client-credentials token from the gateway and when it expires (``time.monotonic``)."""
    client = _Gateway(gateway, "-", settings)
    try:
        answer = client.call("POST", f"{client.site}/oauth/token", body={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret,
            "audience": "api.atlassian.com"})
    except TrackerError as exc:
        if exc.reason in ("auth", "permission", "invalid", "not_found"):
            raise TrackerError(f"the devinfo gateway at {client.site} refused the OAuth client id and secret",
                               reason="auth", hint="check --devinfo-client-id and the secret's file (Jira Cloud: "
                               "Settings → Apps → OAuth credentials)") from None
        raise
    finally:
        client.close()
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise TrackerError("the gateway's token answer has no access_token", reason="invalid")
    expires = answer.get("expires_in") if isinstance(answer.get("expires_in"), int) else 3600
    return token, time.monotonic() + max(expires - 60, 30)


class DevInfoSink:
    """``DevelopmentSink`` for Jira Cloud over devinfo 0.10."""

    chunk = 300  # of all types together: under 400 of one type and 1,000 in all

    def __init__(self, gateway: str, cloud_id: str, client_id: str, client_secret: str,
                 settings: TrackerSettings) -> None:
        if not cloud_id:
            raise InvalidInput("no cloud id for the Jira Cloud site", reason="invalid")
        self._gateway, self._id, self._secret, self._settings = gateway, client_id, client_secret, settings
        self._client = _Gateway(gateway, cloud_id, settings)
        self._expires = 0.0

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if time.monotonic() >= self._expires:
            token, self._expires = fetch_token(self._gateway, self._id, self._secret, self._settings)
            self._client.authorise(token)
        try:
            return self._client.call(method, path, **kwargs)
        except TrackerError as exc:
            if exc.reason != "auth":
                raise
            self._expires = 0.0  # revoked or expired early: one fresh token, then the error stands
            token, self._expires = fetch_token(self._gateway, self._id, self._secret, self._settings)
            self._client.authorise(token)
            return self._client.call(method, path, **kwargs)

    def send(self, repository: DevRepository, entities: Sequence[DevEntity], sequence: int) -> set[str]:
        body: dict[str, Any] = {
            "repositories": [{
                "id": repository.id, "name": _cut(repository.name, 255), "url": _cut(repository.url, 2000),
                "updateSequenceId": sequence,
                "commits": [_commit(e, sequence) for e in entities if e.type == "commit"],
                "branches": [_branch(e, sequence) for e in entities if e.type == "branch"],
                "pullRequests": [_pull(e, sequence) for e in entities if e.type == "pull_request"],
            }],
            "preventTransitions": True,
            "properties": {"devlink": "1"},
            "providerMetadata": {"product": "devlink"},
        }
        answer = self._call("POST", "bulk", body=body)
        answer = answer if isinstance(answer, dict) else {}
        failed = answer.get("failedDevinfoEntities") or {}
        if isinstance(failed, dict) and failed:
            raise TrackerError(f"Jira refused development data of {repository.name}: {_refusal(failed)}",
                               reason="invalid")
        unknown = answer.get("unknownIssueKeys") or []
        return {str(k) for k in unknown if isinstance(k, str)}

    def delete(self, repository: DevRepository, entities: Sequence[DevEntity], sequence: int) -> None:
        for entity in entities:
            self._call("DELETE", f"repository/{repository.id}/{entity.type}/{_quote(_devinfo_id(entity))}",
                       params={"_updateSequenceId": sequence}, missing_ok=True)

    def forget(self, repository: DevRepository, entities: Sequence[DevEntity], sequence: int) -> None:
        self._call("DELETE", f"repository/{repository.id}", params={"_updateSequenceId": sequence},
                   missing_ok=True)

    def summarise(self, counts: dict[str, dict[str, int]], page_url: str | None) -> None:
        return  # Jira Cloud counts what it was sent


def _refusal(failed: dict[str, Any]) -> str:
    """The first of Jira's reasons in ``failedDevinfoEntities`` (repository id -> its errors and its entities')."""
    for errors in failed.values():
        if not isinstance(errors, dict):
            continue
        found = [*errors.get("errorMessages", [])]
        for kind in ("commits", "branches", "pullRequests"):
            for entity in errors.get(kind) or []:
                if isinstance(entity, dict):
                    found += [{**m, "entity": entity.get("id")} if isinstance(m, dict) else m
                              for m in entity.get("errorMessages") or []]
        for message in found:
            text = message.get("message") if isinstance(message, dict) else message
            where = f" ({message['entity']})" if isinstance(message, dict) and message.get("entity") else ""
            if text:
                return f"{str(text)[:300]}{where}"
    return "no reason given"


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _commit(entity: DevEntity, sequence: int) -> dict[str, Any]:
    doc = entity.doc
    return {
        "id": entity.id, "issueKeys": list(entity.keys[:MAX_KEYS]), "updateSequenceId": sequence,
        "hash": entity.id, "message": _cut(doc.get("message"), 1024) or entity.id[:12],
        "author": {"name": _cut(doc.get("author_name"), 255) or "?", "email": _cut(doc.get("author_email"), 255)},
        "fileCount": 0, "url": _cut(doc.get("url"), 2000), "authorTimestamp": _iso(doc.get("authored_at")),
        "displayId": entity.id[:12], "flags": ["MERGE_COMMIT"] if doc.get("merge") else [],
    }


def _branch(entity: DevEntity, sequence: int) -> dict[str, Any]:
    doc = entity.doc
    head = doc.get("head") or {}
    return {
        "id": _devinfo_id(entity), "issueKeys": list(entity.keys[:MAX_KEYS]), "updateSequenceId": sequence,
        "name": _cut(entity.id, 512), "url": _cut(doc.get("url"), 2000),
        "lastCommit": {
            "id": head.get("sha", ""), "issueKeys": list(entity.keys[:MAX_KEYS]), "updateSequenceId": sequence,
            "hash": head.get("sha", ""), "message": _cut(head.get("message"), 1024) or head.get("sha", "")[:12],
            "author": {"name": _cut(head.get("author_name"), 255) or "?",
                       "email": _cut(head.get("author_email"), 255)},
            "fileCount": 0, "url": _cut(head.get("url") or doc.get("url"), 2000),
            "authorTimestamp": _iso(head.get("authored_at")), "displayId": head.get("sha", "")[:12],
        },
    }


def _pull(entity: DevEntity, sequence: int) -> dict[str, Any]:
    doc = entity.doc
    return {
        "id": entity.id, "issueKeys": list(entity.keys[:MAX_KEYS]), "updateSequenceId": sequence,
        "status": _PR_STATUS.get(str(doc.get("state")), "UNKNOWN"), "title": _cut(doc.get("title"), 1024),
        "author": {"name": _cut(doc.get("author"), 255) or "?", "email": ""},
        "commentCount": int(doc.get("comment_count") or 0),
        "sourceBranch": _cut(doc.get("source_branch"), 255), "destinationBranch": _cut(doc.get("target_branch"), 255),
        "lastUpdate": _iso(doc.get("updated_at")), "url": _cut(doc.get("url"), 2000),
        "displayId": f"#{entity.id}",
        "reviewers": [{"name": _cut(r.get("login"), 255), "email": "",
                       "approvalStatus": _APPROVAL.get(str(r.get("state")), "UNAPPROVED")}
                      for r in doc.get("reviewers") or [] if isinstance(r, dict)],
    }


class RemoteLinkSink:
    """``DevelopmentSink`` for Jira Data Center: remote issue links under devlink's ``globalId``s."""

    chunk = 50

    def __init__(self, client: JiraClient) -> None:
        self._client = client

    def close(self) -> None:
        self._client.close()

    def send(self, repository: DevRepository, entities: Sequence[DevEntity], sequence: int) -> set[str]:
        unknown: set[str] = set()
        for entity in entities:
            if entity.type == "commit":
                continue  # commits are counted on the development page's link, not linked one by one
            for key in entity.keys:
                if key in unknown:
                    continue
                try:
                    self._link(key, _global_id(repository, entity), _link_object(repository, entity))
                except TrackerError as exc:
                    if exc.reason != "not_found":
                        raise
                    unknown.add(key)
        return unknown

    def delete(self, repository: DevRepository, entities: Sequence[DevEntity], sequence: int) -> None:
        for entity in entities:
            if entity.type not in ("branch", "pull_request"):
                continue  # commits have no link of their own; the page link follows ``summarise``
            for key in entity.keys:
                self._client.call("DELETE", f"issue/{key}/remotelink",
                                  params={"globalId": _global_id(repository, entity)}, missing_ok=True)

    forget = delete

    def summarise(self, counts: dict[str, dict[str, int]], page_url: str | None) -> None:
        for key, count in counts.items():
            global_id = f"devlink:issue:{key}"
            if not any(count.values()) or not page_url:
                self._client.call("DELETE", f"issue/{key}/remotelink", params={"globalId": global_id},
                                  missing_ok=True)
                continue
            title = (f"devlink: {count.get('commits', 0)} commits, {count.get('branches', 0)} branches, "
                     f"{count.get('pull_requests', 0)} pull requests")
            try:
                self._link(key, global_id, {"url": page_url.format(key=key), "title": title,
                                            "summary": "Development data of this issue in devlink"})
            except TrackerError as exc:
                if exc.reason != "not_found":
                    raise

    def _link(self, key: str, global_id: str, target: dict[str, Any]) -> None:
        self._client.call("POST", f"issue/{key}/remotelink", body={
            "globalId": global_id, "relationship": "development",
            "application": {"type": "org.devlink", "name": "devlink"}, "object": target})


def _global_id(repository: DevRepository, entity: DevEntity) -> str:
    """Unique per entity within Jira's 255 characters: a long branch name is hashed, never cut."""
    plain = f"devlink:{repository.id}:{entity.type}:{entity.id}"
    return plain if len(plain) <= 255 else f"devlink:{repository.id}:{entity.type}:~{_hash(entity.id)}"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _devinfo_id(entity: DevEntity) -> str:
    """devinfo ids take ``[A-Za-z0-9~._-]`` only: a branch name (``feature/KAFKA-1``) goes as its hash."""
    if entity.type == "branch" and not _DEVINFO_ID.fullmatch(entity.id):
        return f"~{_hash(entity.id)[:60]}"
    return entity.id


def _link_object(repository: DevRepository, entity: DevEntity) -> dict[str, Any]:
    doc = entity.doc
    if entity.type == "branch":
        title = f"Branch {entity.id} in {repository.name}"
        resolved = False
    else:
        state = str(doc.get("state") or "open")
        title = f"Pull request #{entity.id} [{state.upper()}]: {doc.get('title') or ''}"
        resolved = state in ("merged", "closed")
    return {"url": _cut(doc.get("url") or repository.url, 2000), "title": _cut(title, 255),
            "summary": _cut(repository.name, 255), "status": {"resolved": resolved}}
