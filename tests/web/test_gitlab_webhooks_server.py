"""``POST /hooks/gitlab`` on a real ``devlink serve``, over loopback HTTP, with every payload of the GitLab corpus.

The group ``acme`` on the stub GitLab (tests/gitlab_stub.py) is linked over the API with a token and
``link: all``, so devlink installs a real project hook on each of its projects.  The test reads each hook's
URL and secret token back from the stub (GitLab's API never returns a hook's token; ``stub.hooks()`` does)
and delivers as GitLab would: to the hook's URL (``{DEVLINK_BASE_URL}/hooks/gitlab?project=<id>``, sent to
the server's real address), with the token in ``X-Gitlab-Token``, the manifest's ``X-Gitlab-Event`` and the
other headers GitLab sends (``stub.delivery_headers``).

The payloads of ../shared/corpus/gitlab-webhooks were captured on gitlab.com and other instances: their
project ids mean nothing here.  Each is sent with its project id rewritten to the id of a linked project on
the stub (``retarget``): derived data, not the corpus's bytes.  A payload naming another project than its
hook's is refused (see ``test_a_payload_for_another_project_is_refused``), so unrewritten corpus bytes would
prove nothing.

Every process this module starts sends non-loopback HTTP(S) through a trap that records whoever knocks: the
payloads name gitlab.com and example.com, and nothing may ever reach them.
"""

import copy
import http.client
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from devlink.config import load_settings
from devlink.hosts.gitlab import HOST as GITLAB_HOST
from devlink.runtime import Runtime
from devlink.store.models import WebhookDelivery
from gitlab_world import TOKEN, GitLabWorld
from gitrepos import GitRepo
from servers import EgressTrap, Server, start_server, stop_server

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "gitlab-webhooks"
BASE_URL = "http://devlink.example.test"  # what hooks are registered with; never dialled
GROUP = "acme"
PROJECTS = ("api", "web")
MAX_BODY = 25 * 1024 * 1024  # GitLab sends no webhook over 25 MiB (Gitlab::Json::LimitedEncoder)
# go-gitlab's group_merge_request.json was edited by hand: its object_attributes keys end in a space ("iid ",
# "state ") and its project has no id, nor does anything else in it name one.  GitLab never sent it as it is,
# and nothing in it says which merge request of which project it is; the parser says so (`project.id`).
BROKEN = {"go-gitlab/group_merge_request.json": "project.id"}
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Ada Lovelace", "GIT_AUTHOR_EMAIL": "ada@example.com",
                "GIT_COMMITTER_NAME": "Ada Lovelace", "GIT_COMMITTER_EMAIL": "ada@example.com",
                "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}

Json = dict[str, Any]


@dataclass
class Hooked:
    """A linked project and the hook devlink installed on it, as the stub GitLab stores it."""

    path: str
    project_id: int
    repository_id: int
    hook_id: int
    url: str
    token: str
    work: GitRepo

    @property
    def target(self) -> str:
        """The hook URL's path and query, as the server receives it."""
        parts = urlsplit(self.url)
        return f"{parts.path}?{parts.query}"


@dataclass
class World:
    server: Server
    gitlab: GitLabWorld
    trap: EgressTrap
    settings_env: dict[str, str]
    projects: dict[str, Hooked]
    account_id: int
    client: httpx.Client
    answers: list[httpx.Response] = field(default_factory=list)

    @property
    def api(self) -> Hooked:
        return self.projects[f"{GROUP}/api"]

    @property
    def web(self) -> Hooked:
        return self.projects[f"{GROUP}/web"]

    def headers(self, event: str, token: str | None, **extra: str) -> dict[str, str]:
        sent = self.gitlab.stub.delivery_headers(event, token or "")
        if token is None:
            del sent["X-Gitlab-Token"]
        return sent | extra

    def post(self, target: str, body: bytes | Iterator[bytes], headers: dict[str, str]) -> httpx.Response:
        answer = self.client.post(target, content=body, headers=headers)
        self.answers.append(answer)
        return answer

    def deliver(self, hooked: Hooked, event: str, body: bytes | Json, *, token: str | None = "",
                **extra: str) -> httpx.Response:
        """A delivery from ``hooked``'s hook; ``token`` "" is the hook's own, None sends none."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.post(hooked.target, content, self.headers(event, hooked.token if token == "" else token, **extra))

    def runtime(self) -> Runtime:
        return Runtime.open(load_settings(self.settings_env), migrate=False)

    def deliveries(self) -> int:
        rt = self.runtime()
        try:
            with rt.sessions() as session:
                return int(session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)
        finally:
            rt.close()

    def view(self, hooked: Hooked) -> Json:
        answer = self.client.get(f"/api/v1/repositories/{hooked.repository_id}")
        assert answer.status_code == 200, answer.text
        view: Json = answer.json()
        return view

    def wait_idle(self) -> None:
        for hooked in self.projects.values():
            self.server.wait_idle(hooked.repository_id, 20)


@contextmanager
def running_world(root: Path, extra_env: dict[str, str] | None = None) -> Iterator[World]:
    """A stub GitLab with ``acme/api`` and ``acme/web``, a ``devlink serve`` with the group linked over the API."""
    trap = EgressTrap()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**GIT_IDENTITY, **trap.env()}.items():
            patch.setenv(name, value)
        gitlab = GitLabWorld(root / "gitlab")
        server: Server | None = None
        try:
            gitlab.group(GROUP)
            work = {name: gitlab.project(GROUP, name) for name in PROJECTS}
            server_env = {"DEVLINK_BASE_URL": BASE_URL, **trap.env(), **(extra_env or {})}
            home = root / "home"
            server = start_server(home, server_env)
            client = server.client()
            created = client.post("/api/v1/accounts", json={"host": "gitlab", "name": GROUP,
                                                            "url": gitlab.stub.web_url, "token": TOKEN, "link": "all"})
            assert created.status_code == 201, created.text
            account = created.json()
            assert account["discovery"]["webhooks"] == {f"{GROUP}/{n}": "installed" for n in PROJECTS}, created.text
            rows = {r["name"]: r for r in client.get(f"/api/v1/accounts/{account['id']}/repositories").json()}
            projects: dict[str, Hooked] = {}
            for name in PROJECTS:
                path = f"{GROUP}/{name}"
                project_id = gitlab.stub.project(path)["id"]
                [hook] = gitlab.stub.hooks(path)
                row = rows[path]
                assert row["linked"] and row["external_id"] == str(project_id)
                projects[path] = Hooked(path, project_id, row["id"], hook["id"], hook["url"], hook["token"],
                                        work[name])
            settings_env = {"DEVLINK_HOME": str(home), "DEVLINK_BASE_URL": BASE_URL,
                            **{k: v for k, v in (extra_env or {}).items() if k == "DEVLINK_DATABASE_URL"}}
            world = World(server, gitlab, trap, settings_env, projects, account["id"], client, [created])
            world.wait_idle()  # the backfills linking queued
            assert client.post("/api/v1/projects", json={"key": "API", "name": "API"}).status_code == 201
            assert client.post("/api/v1/issues", json={"key": "API-7", "summary": "x"}).status_code == 201
            yield world
            client.close()
        finally:
            if server is not None:
                stop_server(server)
            gitlab.close()
            trap.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """On SQLite (the default database in DEVLINK_HOME); ``test_on_postgresql`` builds its own."""
    with running_world(tmp_path_factory.mktemp("gitlab-hooks")) as running:
        yield running


def wait_for(check: Callable[[], Any], what: str, world: World, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened\n{world.server.log.read_text()[-3000:]}")
        time.sleep(0.05)
    return result


def refused(answer: httpx.Response, status: int, reason: str) -> Json:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem: Json = answer.json()
    assert problem["type"] == reason, answer.text
    return problem


# --------------------------------------------------------------------------- the corpus, derived


def manifest() -> list[Json]:
    entries: list[Json] = json.loads((CORPUS / "manifest.json").read_text())
    return entries


def corpus(name: str) -> Json:
    payload: Json = json.loads((CORPUS / name).read_text())
    return payload


def retarget(payload: Json, project_id: int) -> Json:
    """Derived data: the payload as the hook of project ``project_id`` would send it.

    Every place a GitLab payload names its project gets the new id: ``project.id``, ``project_id`` (pushes,
    notes), ``object_attributes.project_id`` (notes) and ``object_attributes.target_project_id`` (merge
    requests; ``source_project_id`` too when the source is the same project, i.e. not a fork).  A payload
    that names no project at all keeps naming none.
    """
    data = copy.deepcopy(payload)
    project = data.get("project")
    if isinstance(project, dict) and project.get("id") is not None:
        project["id"] = project_id
    if data.get("project_id") is not None:
        data["project_id"] = project_id
    attrs = data.get("object_attributes")
    if isinstance(attrs, dict):
        if attrs.get("project_id") is not None:
            attrs["project_id"] = project_id
        target = attrs.get("target_project_id")
        if target is not None:
            if attrs.get("source_project_id") == target:
                attrs["source_project_id"] = project_id
            attrs["target_project_id"] = project_id
    return data


def names_a_project(payload: Json) -> bool:
    project = payload.get("project")
    attrs = payload.get("object_attributes")
    return any(v is not None for v in (
        project.get("id") if isinstance(project, dict) else None, payload.get("project_id"),
        attrs.get("target_project_id") if isinstance(attrs, dict) else None))


def expected_status(payload: Json) -> set[str]:
    """What devlink answers, from the payload's own kind (``event_name`` for system hooks that lack it)."""
    kind = payload.get("object_kind") or payload.get("event_name")
    if kind in ("push", "tag_push"):
        return {"queued", "coalesced"}
    if kind == "merge_request":
        return {"updated"}
    return {"ignored"}  # notes; a System Hook of another kind


def push_payload(world: World, hooked: Hooked, before: str, after: str, message: str) -> Json:
    """Derived from go-scm/push.json: a push of one real commit to ``main`` of ``hooked``'s project."""
    payload = retarget(corpus("go-scm/push.json"), hooked.project_id)
    web = f"{world.gitlab.stub.web_url}/{hooked.path}"
    payload.update(ref="refs/heads/main", before=before, after=after, checkout_sha=after, total_commits_count=1,
                   commits=[{"id": after, "message": message, "title": message, "url": f"{web}/-/commit/{after}",
                             "author": {"name": "Ada Lovelace", "email": "ada@example.com"},
                             "added": [], "modified": ["file.txt"], "removed": []}])
    payload["project"].update(path_with_namespace=hooked.path, web_url=web, git_http_url=f"{web}.git",
                              http_url=f"{web}.git", homepage=web, default_branch="main")
    return payload


# --------------------------------------------------------------------------- the tests


@pytest.mark.timeout(30)
def test_linking_installed_one_project_hook_each(world: World) -> None:
    assert GITLAB_HOST.max_body == MAX_BODY
    tokens = set()
    for hooked in world.projects.values():
        [hook] = world.gitlab.stub.hooks(hooked.path)
        assert hook["url"] == f"{BASE_URL}/hooks/gitlab?project={hooked.project_id}"
        assert hook["push_events"] and hook["tag_push_events"] and hook["merge_requests_events"]
        assert hook["enable_ssl_verification"] is True
        assert len(hooked.token) >= 32
        tokens.add(hooked.token)
        webhook = world.view(hooked)["webhook"]
        assert (webhook["state"], webhook["id"], webhook["realtime"]) == ("installed", str(hooked.hook_id), True)
    assert len(tokens) == len(world.projects)  # a secret per project
    # the public API never shows a hook's token, nor does devlink's
    listed = httpx.get(f"{world.gitlab.stub.api_url}/projects/{world.api.project_id}/hooks",
                       headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert [h["id"] for h in listed] == [world.api.hook_id] and "token" not in listed[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("entry", manifest(), ids=[e["file"] for e in manifest()])
def test_every_corpus_payload_is_accepted(world: World, entry: Json) -> None:
    original = corpus(entry["file"])
    hooked = world.web
    payload = retarget(original, hooked.project_id)
    count = world.deliveries()
    answer = world.deliver(hooked, entry["x_gitlab_event"], payload)
    if entry["file"] in BROKEN:
        assert not names_a_project(original)  # nothing to rewrite: it stays as unreadable as it came
        problem = refused(answer, 400, "bad_payload")
        assert f"`{BROKEN[entry['file']]}`" in problem["title"]
        assert world.deliveries() == count  # a delivery devlink cannot read is not recorded
        return
    assert names_a_project(original) and payload != original
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] in expected_status(payload), answer.text
    assert body["repository"] == hooked.repository_id
    assert world.deliveries() == count + 1


@pytest.mark.timeout(30)
def test_a_push_of_a_real_commit_shows_on_the_issue_and_a_replay_changes_nothing(world: World) -> None:
    """Also on PostgreSQL: see ``test_on_postgresql``."""
    push_and_replay(world)


def push_and_replay(world: World) -> None:
    hooked = world.api
    world.wait_idle()
    before = hooked.work.sha("HEAD")
    after = hooked.work.commit("API-7 throttle the clients")
    hooked.work.git("push", "-q", "origin", "main")
    body = json.dumps(push_payload(world, hooked, before, after, "API-7 throttle the clients")).encode()
    headers = world.headers("Push Hook", hooked.token)
    count = world.deliveries()
    answer = world.post(hooked.target, body, headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] in ("queued", "coalesced") and answer.json()["repository"] == hooked.repository_id

    def visible() -> Json | None:
        doc: Json = world.client.get("/api/v1/issues/API-7/development").json()
        return doc if doc["summary"]["commits"] else None

    doc = wait_for(visible, "the pushed commit on API-7", world)
    [commit] = doc["commits"]
    assert commit["sha"] == after
    assert world.deliveries() == count + 1
    world.server.wait_idle(hooked.repository_id, 20)
    settled = world.view(hooked)["sync"]
    git_calls = len(world.gitlab.stub.git_requests)

    # GitLab retries a delivery with the same headers (Idempotency-Key) and body: recorded once, acted on once
    again = world.post(hooked.target, body, headers)
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "duplicate"
    time.sleep(1.0)  # time enough for a sync the replay might have queued to start (the worker polls)
    assert world.deliveries() == count + 1
    view = world.view(hooked)["sync"]
    assert (view["state"], view["pending"], view["finished_at"]) == ("idle", False, settled["finished_at"])
    assert len(world.gitlab.stub.git_requests) == git_calls  # no second fetch
    assert len(visible()["commits"]) == 1  # type: ignore[index]


@pytest.mark.timeout(30)
def test_wrong_missing_or_another_hooks_token_is_401(world: World) -> None:
    body = json.dumps(retarget(corpus("go-scm/push.json"), world.api.project_id)).encode()
    count = world.deliveries()
    api, web = world.api, world.web
    refused(world.deliver(api, "Push Hook", body, token="not-the-token"), 401, "bad_signature")
    refused(world.deliver(api, "Push Hook", body, token=api.token[:-1]), 401, "bad_signature")
    refused(world.deliver(api, "Push Hook", body, token=api.token + "x"), 401, "bad_signature")
    refused(world.deliver(api, "Push Hook", body, token=web.token), 401, "bad_signature")  # another hook's
    refused(world.deliver(api, "Push Hook", body, token=TOKEN), 401, "bad_signature")  # the API token
    refused(world.deliver(api, "Push Hook", body, token=None), 401, "bad_signature")  # no X-Gitlab-Token
    refused(world.post(api.target, body, world.headers("Push Hook", "")), 401, "bad_signature")  # empty
    # the header names in another letter case are the same headers
    lowered = {k.lower(): v for k, v in world.headers("Push Hook", "nope").items()}
    refused(world.post(api.target, body, lowered), 401, "bad_signature")
    assert world.deliveries() == count


@pytest.mark.timeout(30)
def test_a_hook_url_without_a_known_project_is_401_unknown_hook(world: World) -> None:
    api = world.api
    body = json.dumps(retarget(corpus("go-scm/push.json"), api.project_id)).encode()
    headers = world.headers("Push Hook", api.token)
    count = world.deliveries()
    problem = refused(world.post("/hooks/gitlab", body, headers), 401, "unknown_hook")
    assert "?project=" in problem["title"] and api.token not in json.dumps(problem)
    refused(world.post(f"/hooks/gitlab?project={api.project_id}&group=1", body, headers), 401, "unknown_hook")
    refused(world.post("/hooks/gitlab?project=", body, headers), 401, "unknown_hook")
    refused(world.post("/hooks/gitlab?project=abc", body, headers), 401, "unknown_hook")
    refused(world.post("/hooks/gitlab?project=999999", body, headers), 401, "unknown_hook")  # no such hook here
    refused(world.post(f"/hooks/gitlab?group={api.project_id}", body, headers), 401, "unknown_hook")  # no group hook
    assert world.deliveries() == count


@pytest.mark.timeout(30)
def test_a_payload_for_another_project_is_refused(world: World) -> None:
    """The hook's token proves which project's hook sent it; a payload naming another project is not its."""
    count = world.deliveries()
    unchanged = corpus("go-scm/push.json")  # gitlab.com's project 4861503
    problem = refused(world.deliver(world.api, "Push Hook", unchanged), 400, "bad_payload")
    assert "4861503" in problem["title"]
    stranger = retarget(unchanged, world.web.project_id)
    refused(world.deliver(world.api, "Push Hook", stranger), 400, "bad_payload")
    assert world.deliveries() == count


@pytest.mark.timeout(30)
def test_malformed_deliveries_are_400_and_not_recorded(world: World) -> None:
    api = world.api
    body = json.dumps(retarget(corpus("go-scm/push.json"), api.project_id)).encode()
    count = world.deliveries()
    refused(world.deliver(api, "Push Hook", body[:-10]), 400, "bad_json")  # cut short
    refused(world.deliver(api, "Push Hook", b"{not json"), 400, "bad_json")
    refused(world.deliver(api, "Push Hook", b""), 400, "bad_json")
    refused(world.deliver(api, "Push Hook", b"[1, 2]"), 400, "bad_json")
    refused(world.deliver(api, "Push Hook", b"\xff\xfe{}"), 400, "bad_json")
    headers = world.headers("Push Hook", api.token)
    del headers["X-Gitlab-Event"]
    refused(world.post(api.target, body, headers), 400, "bad_event")
    refused(world.post(api.target, body, world.headers("Push Hook", api.token, **{"Idempotency-Key": "a b"})),
            400, "bad_delivery_id")
    # JSON, but the header and the payload disagree, or the push lacks what the engine needs
    refused(world.deliver(api, "Merge Request Hook", body), 400, "bad_payload")
    no_ref = json.loads(body)
    del no_ref["ref"]
    refused(world.deliver(api, "Push Hook", no_ref), 400, "bad_payload")
    assert world.deliveries() == count


@pytest.mark.timeout(60)
def test_an_over_large_body_is_413(world: World) -> None:
    api = world.api
    url = urlsplit(world.server.url)
    headers = world.headers("Push Hook", api.token)
    count = world.deliveries()
    # declared over the limit: refused from the header, before the body is read
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        connection.putrequest("POST", api.target)
        for name, value in {**headers, "Content-Length": str(MAX_BODY + 1)}.items():
            connection.putheader(name, value)
        connection.endheaders(b'{"object_kind": "')
        raw = connection.getresponse()
        assert raw.status == 413
        assert json.loads(raw.read())["type"] == "too_large"
    finally:
        connection.close()

    # streamed without a length (chunked): refused once more than the limit has arrived
    def chunks() -> Iterator[bytes]:
        sent, block = 0, b" " * (1 << 20)
        while sent <= MAX_BODY:
            piece = block[: MAX_BODY + 1 - sent]
            sent += len(piece)
            yield piece

    refused(world.post(api.target, chunks(), world.headers("Push Hook", api.token)), 413, "too_large")
    assert world.deliveries() == count
    assert world.client.get("/api/v1/repositories").status_code == 200  # and the server is well


def test_a_wrong_token_is_refused_before_any_of_the_body_is_read(world: World) -> None:
    """The attack review's F1: the token travels in a header, so a caller without it never makes devlink read
    (up to 25 MB of) a body. Headers promise a large body and none is sent: the 401 comes at once."""
    url = urlsplit(world.server.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        connection.putrequest("POST", world.api.target)
        for name, value in {**world.headers("Push Hook", "not-the-token"), "Content-Length": "5000000"}.items():
            connection.putheader(name, value)
        connection.endheaders()  # not a byte of the body: reading it would wait until the timeout
        raw = connection.getresponse()
        assert raw.status == 401 and json.loads(raw.read())["type"] == "bad_signature"
    finally:
        connection.close()


@pytest.mark.timeout(30)
def test_nothing_leaks_and_nothing_left_loopback(world: World) -> None:
    """Runs last in this module: no answer or log line holds a secret; nothing dialled gitlab.com."""
    world.wait_idle()
    secrets = [TOKEN, *(h.token for h in world.projects.values())]
    log = world.server.log.read_text()
    assert world.answers
    for answer in world.answers:
        shown = answer.text + str(answer.headers)
        assert not [s for s in secrets if s in shown], answer.text
    for path in ("/api/v1/repositories", "/api/v1/accounts", f"/api/v1/accounts/{world.account_id}/repositories",
                 "/accounts", f"/accounts/{world.account_id}"):
        shown = world.client.get(path).text
        assert not [s for s in secrets if s in shown], path
    assert not [s for s in secrets if s in log], "a secret in the server log"
    assert world.trap.seen == []
    assert "Traceback" not in log, log[-3000:]
    assert world.gitlab.stub.errors == []


@pytest.mark.timeout(60)
def test_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """The same server on PostgreSQL: the push is seen, a replay is a duplicate, secrets stay out of the log."""
    with running_world(tmp_path, {"DEVLINK_DATABASE_URL": postgres_url}) as world:
        assert not (tmp_path / "home" / "devlink.db").exists()  # really on PostgreSQL
        push_and_replay(world)
        count = world.deliveries()
        refused(world.deliver(world.api, "Push Hook", b"{}", token="wrong"), 401, "bad_signature")
        refused(world.deliver(world.api, "Push Hook", b"{"), 400, "bad_json")
        # the corpus's merge request, retargeted, is written at once
        payload = retarget(corpus("go-scm/pull_request_create.json"), world.api.project_id)
        answer = world.deliver(world.api, "Merge Request Hook", payload)
        assert (answer.status_code, answer.json()["status"]) == (202, "updated"), answer.text
        assert world.deliveries() == count + 1
        log = world.server.log.read_text()
        assert TOKEN not in log and world.api.token not in log
        assert world.trap.seen == []
