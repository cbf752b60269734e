"""``GitLabClient`` and the ``gitlab`` host kind against the GitLab stub over real HTTP(S) on loopback.

Linking checks (network, TLS with and without a CA bundle, a bad token, a read-only token, an old
version), groups with subgroups, user namespaces, project and group hooks, merge requests with
approvals, rate limits, URLs from answers that must not be kept, redirects and ``Link`` headers that
must not take the token elsewhere, and the OAuth code flow with PKCE and refresh-token rotation.
"""

import base64
import hashlib
import secrets
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devlink.hosts import gitlab
from devlink.hosts.base import HostError, RemoteAccount, Review
from devlink.hosts.gitlab import HOST, GitLabClient
from devlink.hosts.protocol import Credential, HookTarget, HostSettings, RateLimit
from gitlab_stub import MAINTAINER, GitLabStub
from tls import self_signed

TOKEN = "glpat-devlink-test-token"


@pytest.fixture
def stub() -> Iterator[GitLabStub]:
    with GitLabStub() as server:
        server.add_user("ada")
        server.add_token(TOKEN, "ada")
        yield server
        assert not server.errors, server.errors


def settings(stub: GitLabStub, **extra: Any) -> HostSettings:
    return HostSettings(web_url=stub.web_url, api_url=HOST.api_url_for(stub.web_url), **extra)


def client(stub: GitLabStub, token: str = TOKEN, **extra: Any) -> GitLabClient:
    on_rate, auth_kind = extra.pop("on_rate", None), extra.pop("auth_kind", "token")
    return HOST.client(settings(stub, **extra), Credential(token=token, auth_kind=auth_kind), on_rate=on_rate)


def failure(call: Any) -> HostError:
    with pytest.raises(HostError) as caught:
        call()
    return caught.value


def acme(stub: GitLabStub) -> None:
    """acme / platform / core: three levels of public groups, ada a maintainer of the top one."""
    stub.add_group("acme", visibility="public")
    stub.add_group("platform", "acme", visibility="public")
    stub.add_group("core", "acme/platform", visibility="public")
    stub.add_member("acme", "ada", MAINTAINER)


# -- linking: what viewer() checks -------------------------------------------------------


def test_viewer_names_the_user_and_sends_the_token_as_bearer_only(stub: GitLabStub) -> None:
    with client(stub) as api:
        assert api.viewer() == "ada"
    paths = [r.path for r in stub.requests]
    assert paths == ["/api/v4/version", "/api/v4/user", "/api/v4/personal_access_tokens/self"]
    assert {r.auth for r in stub.requests} == {"bearer"}
    assert all("private-token" not in r.headers and r.headers["user-agent"] == "devlink" for r in stub.requests)


def test_a_group_token_acts_as_its_bot_user(stub: GitLabStub) -> None:
    acme(stub)
    stub.add_token("glgat-group", "group_1001_bot", kind="group", resource="acme")
    with client(stub, "glgat-group") as api:
        assert api.viewer() == "group_1001_bot"


def test_an_unreachable_port_is_a_network_error_naming_the_host() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    web = f"http://127.0.0.1:{port}"
    with HOST.client(HostSettings(web, HOST.api_url_for(web), timeout=5), Credential(token=TOKEN)) as api:
        error = failure(api.viewer)
    assert error.reason == "network" and f"127.0.0.1:{port}" in error.message and error.retryable


def test_a_self_signed_certificate_is_refused_without_the_ca_bundle_and_trusted_with_it(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with GitLabStub(tls=(cert, key)) as tls_stub:
        tls_stub.add_user("ada")
        tls_stub.add_token(TOKEN, "ada")
        assert tls_stub.web_url.startswith("https://")
        with client(tls_stub) as api:
            refused = failure(api.viewer)
        assert refused.reason == "tls" and "127.0.0.1" in refused.message
        assert "certificate not trusted" in refused.message and refused.hint and "--ca-bundle" in refused.hint
        with client(tls_stub, ca_bundle=str(cert)) as api:
            assert api.viewer() == "ada"


def test_a_missing_ca_bundle_file_is_a_tls_error(stub: GitLabStub, tmp_path: Path) -> None:
    error = failure(lambda: client(stub, ca_bundle=str(tmp_path / "nope.pem")))
    assert error.reason == "tls" and "cannot read the CA bundle" in error.message


def test_an_unknown_token_is_an_auth_error(stub: GitLabStub) -> None:
    with client(stub, "glpat-unknown") as api:
        error = failure(api.viewer)
    assert error.reason == "auth" and "invalid or expired token" in error.message
    assert "glpat-unknown" not in error.message


def test_an_expired_token_says_what_gitlab_says(stub: GitLabStub) -> None:
    stub.expire_access_token(TOKEN)
    with client(stub) as api:
        error = failure(api.viewer)
    assert error.reason == "auth" and "Token is expired" in error.message


def test_a_read_api_token_is_refused_naming_scope_api(stub: GitLabStub) -> None:
    stub.add_token("glpat-read", "ada", scopes=("read_api",))
    with client(stub, "glpat-read") as api:
        error = failure(api.viewer)
    assert error.reason == "permission"
    assert "needs scope api" in error.message and "read_api cannot manage webhooks" in error.message


def test_a_token_without_any_api_scope_is_refused_with_the_scope_gitlab_names(stub: GitLabStub) -> None:
    stub.add_token("glpat-git", "ada", scopes=("read_repository",))
    with client(stub, "glpat-git") as api:
        error = failure(api.viewer)
    assert error.reason == "permission" and "lacks a scope" in error.message and "api" in error.message


def test_a_gitlab_older_than_15_5_is_refused_with_its_version(stub: GitLabStub) -> None:
    stub.version = "15.4.6-ee"
    with client(stub) as api:
        error = failure(api.viewer)
    assert error.reason == "invalid"
    assert "GitLab 15.4" in error.message and "older than 15.5" in error.message
    assert "personal_access_tokens/self" in error.message
    stub.version = "15.5.0"
    with client(stub) as api:
        assert api.viewer() == "ada"


def test_an_oauth_token_is_checked_through_token_info(stub: GitLabStub) -> None:
    token = oauth_token(stub, scope="read_api")
    with client(stub, token, auth_kind="oauth") as api:
        error = failure(api.viewer)
    assert error.reason == "permission" and "needs scope api" in error.message
    assert any(r.path == "/oauth/token/info" for r in stub.requests)
    assert not any(r.path.endswith("/personal_access_tokens/self") for r in stub.requests)
    with client(stub, oauth_token(stub), auth_kind="oauth") as api:
        assert api.viewer() == "ada"


def test_a_malformed_answer_is_invalid_not_a_crash(stub: GitLabStub) -> None:
    stub.fail_next("GET", "/api/v4/user", 200, body=["not", "a", "user"])
    with client(stub) as api:
        error = failure(api.viewer)
    assert error.reason == "invalid" and "shape" in error.message


def test_an_answer_larger_than_the_bound_is_refused(stub: GitLabStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gitlab, "MAX_ANSWER_BYTES", 1000)
    stub.fail_next("GET", "/api/v4/user", 200, body={"username": "ada", "bio": "x" * 5000})
    with client(stub) as api:
        error = failure(api.viewer)
    assert error.reason == "invalid" and "more than" in error.message


def test_an_answer_without_a_length_is_bounded_as_it_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gitlab, "MAX_ANSWER_BYTES", 1000)
    chunk = b'{"version": "' + b"1" * 600

    class Chunked(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(4):  # 2.4 kB in all, no Content-Length to refuse up front
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Chunked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        web = f"http://127.0.0.1:{server.server_port}"
        with HOST.client(HostSettings(web, HOST.api_url_for(web)), Credential(token=TOKEN)) as api:
            error = failure(api.viewer)
    finally:
        server.shutdown()
        server.server_close()
    assert error.reason == "invalid" and "more than" in error.message


# -- accounts and projects -----------------------------------------------------------------


def test_a_group_lists_every_project_of_its_subgroups_with_full_paths(stub: GitLabStub) -> None:
    acme(stub)
    app = stub.add_project("acme/platform/core", "app", default_branch="trunk")
    old = stub.add_project("acme/platform", "old", archived=True, visibility="internal")
    site = stub.add_project("acme", "site", visibility="public")
    stub.add_group("other", visibility="public")
    stub.add_project("other", "elsewhere", visibility="public")
    with client(stub) as api:
        group = api.account("acme")
        assert group == RemoteAccount("acme", "group", str(stub.groups["acme"]["id"]), f"{stub.web_url}/groups/acme")
        repositories = {r.full_name: r for r in api.repositories(group, "ada")}
    assert set(repositories) == {"acme/platform/core/app", "acme/platform/old", "acme/site"}
    deep = repositories["acme/platform/core/app"]
    assert deep.external_id == str(app["id"]) and deep.owner == "acme/platform/core"
    assert deep.clone_url == f"{stub.web_url}/acme/platform/core/app.git"
    assert deep.web_url == f"{stub.web_url}/acme/platform/core/app"
    assert deep.private and not deep.archived and deep.default_branch == "trunk"
    assert repositories["acme/platform/old"].archived and repositories["acme/platform/old"].private
    assert repositories["acme/platform/old"].external_id == str(old["id"])
    assert not repositories["acme/site"].private and repositories["acme/site"].external_id == str(site["id"])


def test_a_subgroup_is_found_by_its_full_path(stub: GitLabStub) -> None:
    acme(stub)
    stub.add_project("acme/platform/core", "app")
    with client(stub) as api:
        core = api.account("acme/platform/core")
        assert (core.login, core.kind, core.external_id) == ("acme/platform/core", "group",
                                                             str(stub.groups["acme/platform/core"]["id"]))
        assert [r.full_name for r in api.repositories(core, "ada")] == ["acme/platform/core/app"]
    assert any(r.path == "/api/v4/groups/acme%2Fplatform%2Fcore" for r in stub.requests)


def test_a_large_group_is_read_page_by_page(stub: GitLabStub) -> None:
    acme(stub)
    for number in range(230):
        stub.add_project("acme/platform", f"p{number:03}")
    with client(stub) as api:
        repositories = api.repositories(api.account("acme"), "ada")
    assert len(repositories) == 230 and len({r.external_id for r in repositories}) == 230
    listed = [r for r in stub.requests if r.path.endswith("/projects")]
    assert len(listed) == 3 and all(r.query.get("per_page") == "100" for r in listed)


def test_a_user_namespace_lists_its_projects(stub: GitLabStub) -> None:
    stub.add_user("bob")
    mine = stub.add_project("ada", "notes")
    stub.add_project("bob", "secret")  # private, and ada is no member: not visible
    public = stub.add_project("bob", "tools", visibility="public")
    with client(stub) as api:
        ada, bob = api.account("ada"), api.account("bob")
        assert (ada.kind, ada.external_id, ada.web_url) == ("user", str(stub.users["ada"]["id"]),
                                                            f"{stub.web_url}/ada")
        assert [(r.full_name, r.external_id, r.owner) for r in api.repositories(ada, "ada")] == [
            ("ada/notes", str(mine["id"]), "ada")]
        assert [(r.full_name, r.external_id) for r in api.repositories(bob, "ada")] == [
            ("bob/tools", str(public["id"]))]


def test_an_unknown_or_invisible_account_is_not_found(stub: GitLabStub) -> None:
    stub.add_group("hidden")  # private, ada has nothing there
    with client(stub) as api:
        for name in ("nobody", "hidden", "acme/nothing"):
            error = failure(lambda name=name: api.account(name))
            assert error.reason == "not_found" and repr(name) in error.message


def test_a_project_by_id_and_a_deleted_one_is_gone(stub: GitLabStub) -> None:
    acme(stub)
    project = stub.add_project("acme/platform", "api")
    with client(stub) as api:
        assert api.repository(str(project["id"])).full_name == "acme/platform/api"
        stub.rename_project("acme/platform/api", "service")
        assert api.repository(str(project["id"])).full_name == "acme/platform/service"
        stub.delete_project("acme/platform/service")
        error = failure(lambda: api.repository(str(project["id"])))
    assert error.reason == "gone"


def test_urls_off_the_host_or_not_http_are_not_kept(stub: GitLabStub) -> None:
    acme(stub)
    project = stub.add_project("acme", "app")
    with client(stub) as api:
        real = api.repository(str(project["id"]))
        body = {"id": project["id"], "path_with_namespace": "acme/app", "namespace": {"full_path": "acme"},
                "web_url": "javascript:alert(document.cookie)", "http_url_to_repo": "https://evil.example/x.git",
                "visibility": "private", "archived": False, "default_branch": "main"}
        stub.fail_next("GET", f"/api/v4/projects/{project['id']}", 200, body=body)
        forged = api.repository(str(project["id"]))
    assert real.web_url == f"{stub.web_url}/acme/app" and real.clone_url == f"{stub.web_url}/acme/app.git"
    assert forged.web_url == "" and forged.clone_url == ""
    assert forged.full_name == "acme/app"


def test_a_redirect_is_not_followed_with_the_token(stub: GitLabStub) -> None:
    stub.fail_next("GET", "/api/v4/user", 301, headers={"Location": "https://elsewhere.example/api/v4/user"})
    with client(stub) as api:
        error = failure(api.viewer)
    assert error.reason == "invalid" and "https://elsewhere.example" in error.message
    assert "does not follow redirects" in error.message


def test_a_next_link_to_another_origin_is_refused_before_anything_is_sent(stub: GitLabStub) -> None:
    acme(stub)
    stub.add_project("acme", "app")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        elsewhere = f"http://127.0.0.1:{listener.getsockname()[1]}"
        group_id = stub.groups["acme"]["id"]
        stub.fail_next("GET", f"/api/v4/groups/{group_id}/projects", 200, body=[],
                       headers={"Link": f'<{elsewhere}/api/v4/groups/{group_id}/projects?page=2>; rel="next"'})
        with client(stub) as api:
            error = failure(lambda: api.repositories(api.account("acme"), "ada"))
        assert error.reason == "invalid" and "does not send the credential there" in error.message
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody knocked


# -- hooks ---------------------------------------------------------------------------------


def test_project_hooks_are_created_listed_updated_and_deleted(stub: GitLabStub) -> None:
    acme(stub)
    project = stub.add_project("acme/platform", "api")
    target = HookTarget("repository", "acme/platform/api", str(project["id"]))
    url = HOST.hook_url("https://devlink.example/", target)
    assert url == f"https://devlink.example/hooks/gitlab?project={project['id']}"
    with client(stub) as api:
        hook_id = api.create_hook(target, url, "s3cret")
        [stored] = stub.hooks("acme/platform/api")
        assert str(stored["id"]) == hook_id and stored["url"] == url and stored["token"] == "s3cret"
        assert stored["push_events"] and stored["tag_push_events"] and stored["merge_requests_events"]
        assert stored["enable_ssl_verification"]
        assert [(h.id, h.url, h.current) for h in api.hooks(target)] == [(hook_id, url, True)]

        stub.project("acme/platform/api")["hooks"][0]["tag_push_events"] = False  # someone edited it
        assert [h.current for h in api.hooks(target)] == [False]
        api.update_hook(target, hook_id, url + "&v=2", "n3w")
        [stored] = stub.hooks("acme/platform/api")
        assert (stored["url"], stored["token"], stored["tag_push_events"]) == (url + "&v=2", "n3w", True)
        assert [h.current for h in api.hooks(target)] == [True]

        api.delete_hook(target, hook_id)
        assert stub.hooks("acme/platform/api") == [] and api.hooks(target) == []
        assert failure(lambda: api.delete_hook(target, hook_id)).reason == "not_found"
    assert not any(r.auth != "bearer" for r in stub.requests)


def test_a_secret_never_appears_in_a_listing_or_a_message(stub: GitLabStub) -> None:
    acme(stub)
    project = stub.add_project("acme", "api")
    target = HookTarget("repository", "acme/api", str(project["id"]))
    stub.deny_hooks("acme/api")
    with client(stub) as api:
        error = failure(lambda: api.create_hook(target, "https://devlink.example/hooks/gitlab", "s3cret"))
    assert error.reason == "permission" and "s3cret" not in error.message


def test_group_hooks_are_not_found_on_free_and_work_on_premium(stub: GitLabStub) -> None:
    acme(stub)
    stub.add_member("acme", "ada", 50)  # owner: group hooks need it
    group_id = str(stub.groups["acme"]["id"])
    target = HookTarget("account", "acme", group_id)
    url = HOST.hook_url("https://devlink.example", target)
    assert url == f"https://devlink.example/hooks/gitlab?group={group_id}"
    with client(stub) as api:
        free = failure(lambda: api.hooks(target))
        assert free.reason == "not_found" and "Premium" in free.message
        assert failure(lambda: api.create_hook(target, url, "s3cret")).reason == "not_found"
        stub.tier = "premium"
        hook_id = api.create_hook(target, url, "s3cret")
        [stored] = stub.group_hooks("acme")
        assert str(stored["id"]) == hook_id and stored["token"] == "s3cret" and stored["merge_requests_events"]
        assert [(h.id, h.current) for h in api.hooks(target)] == [(hook_id, True)]
        api.delete_hook(target, hook_id)
        assert stub.group_hooks("acme") == []


def test_a_hook_url_gitlab_blocks_is_an_invalid_request_with_its_reason(stub: GitLabStub) -> None:
    acme(stub)
    project = stub.add_project("acme", "api")
    stub.allow_local_hooks = False
    with client(stub) as api:
        error = failure(lambda: api.create_hook(HookTarget("repository", "acme/api", str(project["id"])),
                                                "http://127.0.0.1:9/hooks/gitlab", "s3cret"))
    assert error.reason == "invalid" and "Requests to localhost are not allowed" in error.message


# -- merge requests ------------------------------------------------------------------------


def project_with_merge_requests(stub: GitLabStub) -> Any:
    acme(stub)
    stub.add_project("acme/platform", "api")
    start = datetime(2024, 5, 1, 10, tzinfo=UTC)
    stub.add_merge_request("acme/platform/api", title="KAFKA-1 first", source_branch="a", author="ada",
                           state="merged", created_at=start, updated_at=start + timedelta(hours=1))
    stub.add_merge_request("acme/platform/api", title="KAFKA-2 second", source_branch="b", author="bob",
                           draft=True, created_at=start, updated_at=start + timedelta(hours=3))
    stub.add_merge_request("acme/platform/api", title="third", description="closes KAFKA-3", source_branch="c",
                           author="carol", state="closed", created_at=start, updated_at=start + timedelta(hours=2))
    stub.add_merge_request("acme/platform/api", title="fourth", source_branch="d", author="ada",
                           reviewers=["bob", "carol"], user_notes_count=4, created_at=start,
                           updated_at=start + timedelta(hours=4))
    with client(stub) as api:
        return api.repository(str(stub.project("acme/platform/api")["id"]))


def test_merge_requests_come_newest_first_with_their_states(stub: GitLabStub) -> None:
    repository = project_with_merge_requests(stub)
    with client(stub) as api:
        pulls = list(api.pulls(repository))
    assert [(p.number, p.state, changed) for p, changed in pulls] == [
        (4, "open", True), (2, "draft", True), (3, "closed", True), (1, "merged", True)]
    fourth = pulls[0][0]
    assert fourth.reviewers is None and fourth.comment_count is None
    assert (fourth.title, fourth.source_branch, fourth.target_branch, fourth.author) == ("fourth", "d", "main", "ada")
    assert fourth.url == f"{stub.web_url}/acme/platform/api/-/merge_requests/4"
    assert fourth.external_id == str(stub.project("acme/platform/api")["mrs"][4]["id"])
    assert fourth.updated_at == datetime(2024, 5, 1, 14, tzinfo=UTC)
    merged = pulls[3][0]
    assert merged.merged_at is not None and merged.description == ""
    assert pulls[2][0].description == "closes KAFKA-3"
    [listed] = [r for r in stub.requests if r.path.endswith("/merge_requests")]
    assert listed.query == {"state": "all", "order_by": "updated_at", "sort": "desc", "per_page": "100"}


def test_merge_requests_since_a_moment_are_asked_for_with_updated_after(stub: GitLabStub) -> None:
    repository = project_with_merge_requests(stub)
    with client(stub) as api:
        since = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
        assert [p.number for p, _ in api.pulls(repository, since)] == [4, 2]
    [listed] = [r for r in stub.requests if r.path.endswith("/merge_requests")]
    assert listed.query["updated_after"] == "2024-05-01T12:30:00Z"


def test_details_carry_reviewers_approvals_and_the_comment_count(stub: GitLabStub) -> None:
    repository = project_with_merge_requests(stub)
    stub.add_approval("acme/platform/api", 4, "carol")
    stub.add_approval("acme/platform/api", 4, "dave")  # approved without being asked
    with client(stub) as api:
        details = api.pull_details(repository, 4)
    assert details.comment_count == 4 and details.state == "open" and details.number == 4
    assert details.reviewers == (Review("bob", "requested"), Review("carol", "approved"), Review("dave", "approved"))


def test_details_without_the_approvals_api_keep_the_reviewers(stub: GitLabStub) -> None:
    repository = project_with_merge_requests(stub)
    stub.fail_next("GET", "/merge_requests/4/approvals", 404)
    with client(stub) as api:
        details = api.pull_details(repository, 4)
    assert details.reviewers == (Review("bob", "requested"), Review("carol", "requested"))


def test_merge_requests_disabled_is_a_permission_error_naming_the_project(stub: GitLabStub) -> None:
    acme(stub)
    project = stub.add_project("acme", "docs", merge_requests_enabled=False)
    with client(stub) as api:
        repository = api.repository(str(project["id"]))
        for call in (lambda: list(api.pulls(repository)), lambda: api.pull_details(repository, 1)):
            error = failure(call)
            assert error.reason == "permission"
            assert "merge requests are disabled on acme/docs" in error.message


def test_a_merge_request_with_an_unreadable_shape_is_invalid(stub: GitLabStub) -> None:
    repository = project_with_merge_requests(stub)
    stub.fail_next("GET", "/merge_requests", 200, body=[{"title": "no iid"}])
    with client(stub) as api:
        error = failure(lambda: list(api.pulls(repository)))
    assert error.reason == "invalid"


# -- rate limits ---------------------------------------------------------------------------


def test_every_answer_reports_the_rate_budget(stub: GitLabStub) -> None:
    reset = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=45)
    stub.set_rate_limit(120, limit=2000, reset=reset.timestamp())
    seen: list[RateLimit] = []
    with client(stub, on_rate=seen.append) as api:
        api.viewer()
    assert seen == [RateLimit(2000, 119, reset), RateLimit(2000, 118, reset), RateLimit(2000, 117, reset)]


def test_a_spent_budget_is_rate_limited_with_the_wait_gitlab_asks(stub: GitLabStub) -> None:
    stub.set_rate_limit(0, reset=datetime.now(UTC).timestamp() + 30)
    seen: list[RateLimit] = []
    with client(stub, on_rate=seen.append) as api:
        error = failure(api.viewer)
    assert error.reason == "rate_limited" and error.retryable
    assert error.retry_after is not None and 20 <= error.retry_after <= 31
    assert seen and seen[-1].remaining == 0


def test_a_429_without_retry_after_waits_until_the_reset(stub: GitLabStub) -> None:
    reset = int(datetime.now(UTC).timestamp()) + 100
    stub.fail_next("GET", "/api/v4/version", 429, headers={"RateLimit-Reset": str(reset), "Retry-After": ""})
    with client(stub) as api:
        error = failure(api.viewer)
    assert error.reason == "rate_limited" and error.retry_after is not None and 90 <= error.retry_after <= 101


def test_a_server_error_is_retryable(stub: GitLabStub) -> None:
    stub.fail_next("GET", "/api/v4/version", 502)
    with client(stub) as api:
        error = failure(api.viewer)
    assert error.reason == "server" and error.retryable and "502" in error.message


# -- OAuth ---------------------------------------------------------------------------------

CLIENT_ID, CLIENT_SECRET, REDIRECT = "devlink-app", "app-secret", "https://devlink.example/oauth/gitlab/callback"


def authorize(stub: GitLabStub, scope: str = "api") -> tuple[str, str]:
    """The browser's part of the flow, with ada signed in: (code, verifier)."""
    stub.add_oauth_app(CLIENT_ID, CLIENT_SECRET, REDIRECT)
    stub.oauth_user = "ada"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    url = HOST.oauth_authorize_url(settings(stub), CLIENT_ID, REDIRECT, "st4te", challenge)
    answer = httpx.get(url.replace("scope=api", f"scope={scope}"), follow_redirects=False)
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["st4te"]
    return query["code"][0], verifier


def oauth_token(stub: GitLabStub, scope: str = "api") -> str:
    code, verifier = authorize(stub, scope)
    return HOST.exchange_oauth_code(settings(stub), CLIENT_ID, CLIENT_SECRET, code, REDIRECT, verifier).access_token


def test_the_authorize_url_asks_for_scope_api_with_pkce(stub: GitLabStub) -> None:
    url = HOST.oauth_authorize_url(settings(stub), CLIENT_ID, REDIRECT, "st4te", "ch4llenge")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{stub.web_url}/oauth/authorize"
    assert parse_qs(parts.query) == {"client_id": [CLIENT_ID], "redirect_uri": [REDIRECT], "response_type": ["code"],
                                     "state": ["st4te"], "scope": ["api"], "code_challenge": ["ch4llenge"],
                                     "code_challenge_method": ["S256"]}


def test_a_code_is_exchanged_with_its_verifier_and_the_token_refreshed_with_rotation(stub: GitLabStub) -> None:
    code, verifier = authorize(stub)
    before = datetime.now(UTC)
    grant = HOST.exchange_oauth_code(settings(stub), CLIENT_ID, CLIENT_SECRET, code, REDIRECT, verifier)
    assert grant.scopes == ("api",) and grant.refresh_token and grant.expires_at is not None
    assert before + timedelta(seconds=7190) <= grant.expires_at <= datetime.now(UTC) + timedelta(seconds=7200)
    assert "access_token" not in repr(grant) and grant.access_token not in repr(grant)
    with client(stub, grant.access_token, auth_kind="oauth") as api:
        assert api.viewer() == "ada"

    renewed = HOST.refresh_oauth_token(settings(stub), CLIENT_ID, CLIENT_SECRET, grant.refresh_token)
    assert renewed.access_token != grant.access_token and renewed.refresh_token not in (None, grant.refresh_token)
    assert stub.token_requests == {"authorization_code": 1, "refresh_token": 1}
    with client(stub, renewed.access_token, auth_kind="oauth") as api:
        assert api.viewer() == "ada"
    with client(stub, grant.access_token, auth_kind="oauth") as api:
        assert failure(api.viewer).reason == "auth"  # the old pair was revoked when it was used
    reused = failure(lambda: HOST.refresh_oauth_token(settings(stub), CLIENT_ID, CLIENT_SECRET,
                                                      str(grant.refresh_token)))
    assert reused.reason == "auth" and "authorization grant is invalid" in reused.message


def test_a_wrong_verifier_or_secret_is_refused_with_gitlabs_description(stub: GitLabStub) -> None:
    code, _ = authorize(stub)
    wrong = failure(lambda: HOST.exchange_oauth_code(settings(stub), CLIENT_ID, CLIENT_SECRET, code, REDIRECT,
                                                     "not-the-verifier"))
    assert wrong.reason == "auth" and "authorization grant is invalid" in wrong.message
    code, verifier = authorize(stub)
    bad_client = failure(lambda: HOST.exchange_oauth_code(settings(stub), CLIENT_ID, "nope", code, REDIRECT,
                                                          verifier))
    assert bad_client.reason == "auth" and "Client authentication failed" in bad_client.message


def test_the_token_endpoint_unreachable_is_a_network_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        web = f"http://127.0.0.1:{sock.getsockname()[1]}"
    error = failure(lambda: HOST.refresh_oauth_token(HostSettings(web, HOST.api_url_for(web), timeout=5),
                                                     CLIENT_ID, CLIENT_SECRET, "r"))
    assert error.reason == "network" and urlsplit(web).netloc in error.message


# -- the host kind -------------------------------------------------------------------------


def test_the_kind_canonicalises_urls_and_knows_gitlab_coms_api() -> None:
    assert HOST.kind == "gitlab" and HOST.stored_kind("https://gitlab.example.com") == "gitlab"
    assert HOST.canonical_web_url("https://www.gitlab.com/") == "https://gitlab.com"
    assert HOST.canonical_web_url(" https://example.com/gitlab/ ") == "https://example.com/gitlab"
    assert HOST.api_url_for("https://example.com/gitlab/") == "https://example.com/gitlab/api/v4"
    assert HOST.api_url_for("https://www.gitlab.com") == "https://gitlab.com/api/v4"
    assert HOST.check_api_url("https://gitlab.com", "https://gitlab.com/api/v4/") is None
    assert "https://gitlab.com/api/v4" in str(HOST.check_api_url("https://gitlab.com", "https://proxy.example/api"))
    assert HOST.check_api_url("https://example.com", "https://api.example.com/v4") is None
    assert HOST.max_body == 25 * 1024 * 1024 and HOST.secret_options == frozenset() and HOST.host_option_names == ()
    assert HOST.account_words == {"group": "group", "user": "user"} and "scope api" in HOST.token_help


def test_a_credential_needs_a_token_and_git_gets_oauth2(stub: GitLabStub) -> None:
    error = failure(lambda: HOST.prepare_credential(settings(stub), "acme", None, {}))
    assert error.reason == "auth" and "scope api" in error.message
    credential = HOST.prepare_credential(settings(stub), "acme", TOKEN, {"auth_kind": "oauth"})
    assert (credential.token, credential.auth_kind) == (TOKEN, "oauth")
    assert HOST.prepare_credential(settings(stub), "acme", TOKEN, {}).auth_kind == "token"
    with client(stub) as api:
        assert api.git_credentials() == ("oauth2", TOKEN)


def test_an_api_url_with_a_path_prefix_is_kept(stub: GitLabStub) -> None:
    prefixed = HostSettings(web_url=stub.web_url + "/gitlab", api_url=HOST.api_url_for(stub.web_url + "/gitlab"))
    with HOST.client(prefixed, Credential(token=TOKEN)) as api:
        error = failure(api.viewer)  # the stub serves no prefix: the request went to /gitlab/api/v4
    assert error.reason == "not_found" and f"no GitLab API at {stub.web_url}/gitlab/api/v4" in error.message
    assert stub.requests[-1].path == "/gitlab/api/v4/version"


def test_the_kind_hands_deliveries_to_the_webhook_module(stub: GitLabStub) -> None:
    acme(stub)
    project = stub.add_project("acme", "api")
    target = HookTarget("repository", "acme/api", str(project["id"]))
    query = parse_qs(urlsplit(HOST.hook_url("https://devlink.example", target)).query)
    head = HOST.read_delivery(stub.delivery_headers("Push Hook", "s3cret"), {k: v[0] for k, v in query.items()})
    assert (head.event, head.level, head.target_id) == ("Push Hook", "repository", str(project["id"]))
    assert HOST.verify("s3cret", b"{}", head) and not HOST.verify("other", b"{}", head)
    assert HOST.payload_target({"project": {"id": project["id"]}})[0] == str(project["id"])
    assert HOST.parse("Note Hook", {"object_kind": "note"}).kind == "ignored"
    assert HOST.host_secret({}, head) is None and not HOST.hosts_own_hook({}, "token")
