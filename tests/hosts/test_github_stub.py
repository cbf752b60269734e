"""The GitHub stub is faithful: shapes of the official examples, GitHub's pagination, ETag/304, rate limits,
redirects, hooks, App and OAuth tokens, all over real HTTP with plain httpx (and githubkit's own models)."""

import base64
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from githubkit import AppInstallationAuthStrategy, GitHub, TokenAuthStrategy
from githubkit_schemas.latest import models

from github_stub import CORPUS, GitHubGitServer, GitHubStub, example, recorded

TOKEN = "ghp_" + "a" * 36


@pytest.fixture
def stub() -> Iterator[GitHubStub]:
    with GitHubStub() as server:
        server.add_user("ada")
        server.add_token(TOKEN, "ada")
        yield server
        assert server.errors == []  # no request hit a bug of the stub


def api(stub: GitHubStub, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Accept": "application/vnd.github+json"} | ({"Authorization": f"token {token}"} if token else {})
    return httpx.Client(base_url=stub.api_url, headers=headers)


def links(response: httpx.Response) -> dict[str, str]:
    return {rel: link["url"] for rel, link in response.links.items()}


def test_answers_keep_the_shape_of_the_official_examples(stub: GitHubStub) -> None:
    stub.add_org("acme", members=["ada"])
    stub.add_repo("acme", "widgets", private=True, clone_url="http://git.example/acme/widgets.git")
    stub.add_pull("acme", "widgets", title="KEY-1 fix", head="feature", user="bob", requested_reviewers=["cy"])
    stub.add_review("acme", "widgets", 1, "cy", "CHANGES_REQUESTED")
    with api(stub) as client:
        repo = client.get("/repos/acme/widgets").json()
        pull = client.get("/repos/acme/widgets/pulls/1").json()
        listed = client.get("/repos/acme/widgets/pulls").json()[0]
        review = client.get("/repos/acme/widgets/pulls/1/reviews").json()[0]
        user = client.get("/user").json()
        org = client.get("/orgs/acme").json()
        rate = client.get("/rate_limit").json()
    spec_repo = example("GET_repos_{owner}_{repo}")
    assert set(repo) == set(spec_repo) - {"parent", "source"} | {"language"}  # a fork's answer, missing language
    assert repo["full_name"] == "acme/widgets" and repo["private"] and repo["visibility"] == "private"
    assert repo["clone_url"] == "http://git.example/acme/widgets.git" and repo["owner"]["type"] == "Organization"
    assert repo["url"] == f"{stub.api_url}/repos/acme/widgets" and repo["organization"]["login"] == "acme"
    assert set(pull) == set(example("GET_repos_{owner}_{repo}_pulls_{pull_number}"))
    assert set(listed) == set(example("GET_repos_{owner}_{repo}_pulls")[0])
    assert (pull["number"], pull["state"], pull["merged"], pull["head"]["ref"]) == (1, "open", False, "feature")
    assert pull["requested_reviewers"] == []  # reviewing removes the request, as on GitHub
    assert pull["url"] == f"{stub.api_url}/repos/acme/widgets/pulls/1"
    assert pull["statuses_url"].endswith(f"/statuses/{pull['head']['sha']}")
    assert set(review) == set(example("GET_repos_{owner}_{repo}_pulls_{pull_number}_reviews")[0])
    assert (review["user"]["login"], review["state"]) == ("cy", "CHANGES_REQUESTED")
    assert set(user) == set(example("GET_user")) and user["login"] == "ada"
    assert set(org) == set(recorded_org()) | {"archived_at"} and org["login"] == "acme"
    assert rate["resources"]["core"]["remaining"] == rate["rate"]["remaining"]
    # githubkit's models come from the same OpenAPI description: every answer must parse
    models.FullRepository.model_validate(repo)
    models.PullRequest.model_validate(pull)
    models.PullRequestSimple.model_validate(listed)
    models.PullRequestReview.model_validate(review)
    models.PrivateUser.model_validate(user)
    models.OrganizationFull.model_validate(org)
    models.RateLimitOverview.model_validate(rate)


def recorded_org() -> dict[str, Any]:
    return dict(json.loads((CORPUS / "github-api/get-organization/raw-fixture.json").read_text())[0]["response"])


def test_pagination_follows_github_link_headers(stub: GitHubStub) -> None:
    for n in range(7):
        stub.add_repo("ada", f"repo-{n}")
    with api(stub) as client:
        first = client.get("/user/repos", params={"per_page": 3})
        assert first.status_code == 200 and [r["name"] for r in first.json()] == ["repo-0", "repo-1", "repo-2"]
        assert first.headers["link"] == (f'<{stub.api_url}/user/repos?per_page=3&page=2>; rel="next", '
                                         f'<{stub.api_url}/user/repos?per_page=3&page=3>; rel="last"')
        second = client.get(links(first)["next"])
        assert list(links(second)) == ["prev", "next", "last", "first"]
        assert links(second)["prev"] == links(second)["first"] == f"{stub.api_url}/user/repos?per_page=3&page=1"
        third = client.get(links(second)["next"])
        assert [r["name"] for r in third.json()] == ["repo-6"] and list(links(third)) == ["prev", "first"]
        assert "link" not in client.get("/user/repos").headers  # one page: no Link at all
        assert len(client.get("/user/repos", params={"per_page": 500}).json()) == 7  # per_page is capped at 100


def test_repository_lists_link_by_repository_id_like_github(stub: GitHubStub) -> None:
    repo = stub.add_repo("ada", "app")
    for n in range(4):
        stub.add_pull("ada", "app", title=f"p{n}", head=f"b{n}", created_at=datetime(2024, 1, 1 + n, tzinfo=UTC))
    with api(stub) as client:
        page = client.get("/repos/ada/app/pulls", params={"per_page": 2})
        assert [p["number"] for p in page.json()] == [4, 3]  # sort=created, direction=desc by default
        assert links(page)["next"] == f"{stub.api_url}/repositories/{repo['id']}/pulls?per_page=2&page=2"
        assert [p["number"] for p in client.get(links(page)["next"]).json()] == [2, 1]


def test_pulls_filter_sort_and_track_state(stub: GitHubStub) -> None:
    stub.add_repo("ada", "app")
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    stub.add_pull("ada", "app", title="one", head="a", created_at=t0)
    stub.add_pull("ada", "app", title="two", head="b", created_at=t0 + timedelta(hours=1), draft=True)
    stub.add_pull("ada", "app", title="three", head="c", state="closed", created_at=t0 + timedelta(hours=2))
    stub.update_pull("ada", "app", 1, merged=True)
    with api(stub) as client:
        assert [p["number"] for p in client.get("/repos/ada/app/pulls").json()] == [2]
        updated = client.get("/repos/ada/app/pulls", params={"state": "all", "sort": "updated"}).json()
        assert [p["number"] for p in updated] == [2, 3, 1]  # direction defaults to asc for sort=updated
        assert [p["number"] for p in client.get("/repos/ada/app/pulls", params={"state": "closed",
                                                                                "head": "ada:c"}).json()] == [3]
        merged = client.get("/repos/ada/app/pulls/1").json()
        assert (merged["state"], merged["merged"], merged["mergeable"]) == ("closed", True, None)
        assert merged["merged_at"] == merged["closed_at"] == merged["updated_at"]
        assert merged["updated_at"] > merged["created_at"]
        assert client.get("/repos/ada/app/pulls/2").json()["draft"] is True
        assert client.get("/repos/ada/app/pulls/9").status_code == 404


def test_etag_then_304_costs_no_quota(stub: GitHubStub) -> None:
    stub.add_repo("ada", "app")
    with api(stub) as client:
        first = client.get("/repos/ada/app")
        etag, remaining = first.headers["etag"], int(first.headers["x-ratelimit-remaining"])
        assert etag.startswith('W/"') and first.headers["x-ratelimit-used"] == "1"
        again = client.get("/repos/ada/app", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert int(again.headers["x-ratelimit-remaining"]) == remaining
        stub.add_pull("ada", "app", title="t", head="x")  # open_issues_count changes, so does the ETag
        changed = client.get("/repos/ada/app", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert int(changed.headers["x-ratelimit-remaining"]) == remaining - 1


def test_bad_or_missing_credentials(stub: GitHubStub) -> None:
    with api(stub, "nope") as client:
        bad = client.get("/user")
    assert bad.status_code == 401
    assert bad.json() == {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
    assert recorded("SpecificExceptions.testBadCredentials")["message"] == bad.json()["message"]
    with api(stub, None) as client:
        assert client.get("/user").status_code == 401
        assert client.get("/nothing/here").json()["message"] == "Not Found"


def test_rate_limit_exhaustion_answers_403_until_reset(stub: GitHubStub) -> None:
    stub.set_rate_limit(2, limit=5000)
    with api(stub) as client:
        assert client.get("/user").headers["x-ratelimit-remaining"] == "1"
        assert client.get("/user").headers["x-ratelimit-remaining"] == "0"
        refused = client.get("/user")
        assert refused.status_code == 403 and refused.headers["x-ratelimit-remaining"] == "0"
        assert refused.json()["message"].startswith("API rate limit exceeded")
        assert int(refused.headers["x-ratelimit-reset"]) > time.time()
        assert client.get("/rate_limit").json()["resources"]["core"]["remaining"] == 0  # free, even when out
        stub.set_rate_limit(0, reset=time.time() - 1)  # the window has passed: a fresh budget
        assert client.get("/user").headers["x-ratelimit-remaining"] == "4999"
    stub.rate_limits = False  # GHES without rate limiting
    with api(stub) as client:
        response = client.get("/user")
        assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers
        assert client.get("/rate_limit").status_code == 404


def test_renamed_and_transferred_repositories_redirect_by_id(stub: GitHubStub) -> None:
    repo = stub.add_repo("ada", "old")
    stub.rename_repo("ada", "old", "new")
    with api(stub) as client:
        moved = client.get("/repos/ada/old")
        assert moved.status_code == 301 and moved.headers["location"] == f"{stub.api_url}/repositories/{repo['id']}"
        assert moved.json()["message"] == "Moved Permanently"
        assert client.patch("/repos/ada/old/hooks/1", json={}).status_code == 307
        assert client.get("/repos/ada/old", follow_redirects=True).json()["full_name"] == "ada/new"
        stub.transfer_repo("ada", "new", "acme")
        assert client.get("/repos/ada/new", follow_redirects=True).json()["full_name"] == "acme/new"
        stub.delete_repo("acme", "new", status=410)
        assert client.get("/repos/acme/new").status_code == 410
        assert client.get("/repos/ada/old").status_code == 404  # no redirect to a deleted repository


def test_private_repositories_are_404_to_outsiders(stub: GitHubStub) -> None:
    stub.add_repo("bob", "secret", private=True, visible_to=["cy"])
    stub.add_token("cy-token", "cy")
    with api(stub) as client:
        assert client.get("/repos/bob/secret").status_code == 404
        assert client.get("/users/bob/repos").json() == []
    with api(stub, "cy-token") as client:
        assert client.get("/repos/bob/secret").json()["permissions"]["admin"] is False
        assert [r["name"] for r in client.get("/user/repos").json()] == ["secret"]
        assert client.get("/user/repos", params={"affiliation": "owner"}).json() == []


def test_hooks_hide_the_secret_and_validate_like_github(stub: GitHubStub) -> None:
    stub.add_repo("ada", "app")
    body = {"name": "web", "active": True, "events": ["push", "pull_request"],
            "config": {"url": "https://devlink.example/hook", "content_type": "json", "secret": "s3cr3t"}}
    with api(stub) as client:
        created = client.post("/repos/ada/app/hooks", json=body)
        assert created.status_code == 201
        hook = created.json()
        assert created.headers["location"] == hook["url"] == f"{stub.api_url}/repos/ada/app/hooks/{hook['id']}"
        assert hook["config"] == {"url": "https://devlink.example/hook", "content_type": "json",
                                  "insecure_ssl": "0", "secret": "********"}
        assert set(hook) == set(example("POST_repos_{owner}_{repo}_hooks", "201"))
        models.Hook.model_validate(hook)
        assert stub.hooks("ada", "app")[0]["config"]["secret"] == "s3cr3t"
        duplicate = client.post("/repos/ada/app/hooks", json=body)
        assert duplicate.status_code == 422 and duplicate.json()["message"] == "Validation Failed"
        invalid = client.post("/repos/ada/app/hooks", json={"name": "web", "config": {}})
        assert invalid.status_code == 422 and invalid.json()["errors"][0]["resource"] == "Hook"
        edited = client.patch(f"/repos/ada/app/hooks/{hook['id']}", json={"active": False, "add_events": ["create"]})
        assert edited.json()["active"] is False and edited.json()["events"] == ["push", "pull_request", "create"]
        assert [h["id"] for h in client.get("/repos/ada/app/hooks").json()] == [hook["id"]]
        assert client.delete(f"/repos/ada/app/hooks/{hook['id']}").status_code == 204
        assert stub.hooks("ada", "app") == []
        stub.deny_hooks("ada", "app")
        assert client.get("/repos/ada/app/hooks").status_code == 404  # GitHub hides hooks from non-admins
    stub.add_org("acme", members=["ada"])
    with api(stub) as client:  # the default scopes lack admin:org_hook
        assert client.post("/orgs/acme/hooks", json=body).status_code == 404
    stub.add_token("org-admin", "ada", scopes="repo, admin:org_hook")
    with api(stub, "org-admin") as client:
        org_hook = client.post("/orgs/acme/hooks", json=body).json()
        assert org_hook["config"]["secret"] == "********" and org_hook["type"] == "Organization"
        models.OrgHook.model_validate(org_hook)
        assert stub.org_hooks("acme")[0]["config"]["secret"] == "s3cr3t"


def test_injected_failures_use_recorded_bodies(stub: GitHubStub) -> None:
    stub.add_repo("ada", "app")
    stub.fail_next("GET", "/repos/ada/app", 503)
    stub.fail_next("GET", "/repos/ada/app", 502, times=2)
    stub.fail_next("*", "/repos/ada/app", 403, headers={"Retry-After": "60"})
    with api(stub) as client:
        html = client.get("/repos/ada/app")
        assert html.status_code == 503 and html.text.startswith("<html>")
        assert [client.get("/repos/ada/app").status_code for _ in range(2)] == [502, 502]
        abuse = client.get("/repos/ada/app")
        assert abuse.status_code == 403 and abuse.headers["retry-after"] == "60" and "abuse" in abuse.text
        assert client.get("/repos/ada/app").status_code == 200
    assert [r.path for r in stub.requests][-1] == "/api/v3/repos/ada/app"
    assert stub.requests[-1].headers["authorization"] == f"token {TOKEN}"


def test_app_installation_tokens_from_a_jwt(stub: GitHubStub) -> None:
    pem = stub.add_app(4242)
    stub.add_org("acme")
    stub.add_repo("acme", "one", private=True)
    stub.add_repo("acme", "two")
    stub.add_repo("ada", "elsewhere")
    installation = stub.add_installation(4242, "acme")
    now = int(time.time())
    app_jwt = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": "4242"}, pem, algorithm="RS256")
    with httpx.Client(base_url=stub.api_url, headers={"Authorization": f"Bearer {app_jwt}"}) as client:
        assert client.get("/orgs/acme/installation").json()["id"] == installation
        assert client.get("/users/ada/installation").status_code == 404
        issued = client.post(f"/app/installations/{installation}/access_tokens")
    assert issued.status_code == 201 and stub.tokens_issued == 1
    data = issued.json()
    expires = datetime.strptime(data["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    assert set(data) == set(example("POST_app_installations_{installation_id}_access_tokens", "201")) - {
        "repositories"} and data["repository_selection"] == "all"
    models.InstallationToken.model_validate(data)
    with api(stub, data["token"]) as client:
        listed = client.get("/installation/repositories").json()
        assert listed["total_count"] == 2 and [r["name"] for r in listed["repositories"]] == ["one", "two"]
        assert client.get("/repos/acme/one").status_code == 200
        assert client.get("/repos/ada/elsewhere").status_code == 200  # public
        assert client.get("/user").status_code == 403
    wrong_key = jwt.encode({"iat": now, "exp": now + 60, "iss": "4242"}, stub.add_app(999), algorithm="RS256")
    with httpx.Client(base_url=stub.api_url, headers={"Authorization": f"Bearer {wrong_key}"}) as client:
        assert client.post(f"/app/installations/{installation}/access_tokens").status_code == 401
    stub.installation_token_ttl = 0
    with httpx.Client(base_url=stub.api_url, headers={"Authorization": f"Bearer {app_jwt}"}) as client:
        short = client.post(f"/app/installations/{installation}/access_tokens").json()["token"]
    with api(stub, short) as client:
        assert client.get("/installation/repositories").status_code == 401  # expired


def test_githubkit_parses_every_answer(stub: GitHubStub) -> None:
    pem = stub.add_app(4343)
    stub.add_org("acme", members=["ada"])
    stub.add_repo("acme", "widgets")
    stub.add_pull("acme", "widgets", title="t", head="f")
    stub.add_review("acme", "widgets", 1, "ada")
    installation = stub.add_installation(4343, "acme")
    base = stub.api_url + "/"
    with GitHub(AppInstallationAuthStrategy(4343, pem, installation), base_url=base) as gh:
        repos = gh.rest.apps.list_repos_accessible_to_installation().parsed_data
        assert [r.full_name for r in repos.repositories] == ["acme/widgets"]
        assert gh.rest.pulls.get("acme", "widgets", 1).parsed_data.head.ref == "f"
    with GitHub(TokenAuthStrategy(TOKEN), base_url=base) as gh:
        assert [p.number for p in gh.rest.paginate(gh.rest.pulls.list, owner="acme", repo="widgets")] == [1]
        assert gh.rest.pulls.list_reviews("acme", "widgets", 1).parsed_data[0].state == "APPROVED"
        assert gh.rest.repos.get("acme", "widgets").parsed_data.owner.login == "acme"
        hook = gh.rest.repos.create_webhook("acme", "widgets", data={
            "config": {"url": "https://x.example/h", "content_type": "json", "secret": "k"}}).parsed_data
        assert hook.config.secret == "********"
        assert gh.rest.users.get_authenticated().parsed_data.login == "ada"


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"v" * 40).rstrip(b"=").decode()
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize("as_json", [False, True])
def test_oauth_code_with_pkce(stub: GitHubStub, as_json: bool) -> None:
    stub.add_oauth_app("client-1", "secret-1", callback_url="http://127.0.0.1:9/callback")
    stub.oauth_user = "ada"
    verifier, challenge = pkce()
    with httpx.Client(base_url=stub.web_url) as web:
        authorize = web.get("/login/oauth/authorize", params={
            "client_id": "client-1", "redirect_uri": "http://127.0.0.1:9/callback", "state": "xyz",
            "scope": "repo admin:repo_hook", "code_challenge": challenge, "code_challenge_method": "S256"})
        assert authorize.status_code == 302
        callback = httpx.URL(authorize.headers["location"])
        assert callback.path == "/callback" and callback.params["state"] == "xyz"
        form = {"client_id": "client-1", "client_secret": "secret-1", "code": callback.params["code"],
                "redirect_uri": "http://127.0.0.1:9/callback", "code_verifier": verifier}
        headers = {"Accept": "application/json"} if as_json else {}
        wrong = web.post("/login/oauth/access_token", data=form | {"code": "0" * 20}, headers=headers)
        granted = web.post("/login/oauth/access_token", data=form, headers=headers)
        replay = web.post("/login/oauth/access_token", data=form, headers=headers)
    if as_json:
        assert wrong.status_code == 200 and wrong.json()["error"] == "bad_verification_code"
        answer = granted.json()
        assert replay.json()["error"] == "bad_verification_code"  # a code works once
    else:
        assert granted.headers["content-type"].startswith("application/x-www-form-urlencoded")
        answer = dict(httpx.QueryParams(granted.text))
        assert "error=bad_verification_code" in wrong.text
    assert answer["token_type"] == "bearer" and answer["scope"] == "repo,admin:repo_hook"
    with api(stub, answer["access_token"]) as client:
        me = client.get("/user")
        assert me.json()["login"] == "ada" and me.headers["x-oauth-scopes"] == "repo, admin:repo_hook"


def test_oauth_pkce_verifier_must_match(stub: GitHubStub) -> None:
    stub.add_oauth_app("client-1", "secret-1")
    stub.oauth_user = "ada"
    _, challenge = pkce()
    with httpx.Client(base_url=stub.web_url) as web:
        location = web.get("/login/oauth/authorize", params={
            "client_id": "client-1", "redirect_uri": "http://127.0.0.1:9/cb", "code_challenge": challenge,
            "code_challenge_method": "S256"}).headers["location"]
        answer = web.post("/login/oauth/access_token", json={
            "client_id": "client-1", "client_secret": "secret-1", "code": httpx.URL(location).params["code"],
            "code_verifier": "not-the-verifier"}, headers={"Accept": "application/json"}).json()
    assert answer["error"] == "bad_verification_code"


def test_git_server_takes_the_tokens_github_would(stub: GitHubStub, tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "app.git")], check=True)
    server = GitHubGitServer(tmp_path, stub)
    try:
        def ls_remote(user: str, password: str) -> int:
            url = server.url("app.git", f"{user}:{password}")
            env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
            return subprocess.run(["git", "ls-remote", url], capture_output=True, env=env).returncode

        assert ls_remote("x-access-token", TOKEN) == 0
        assert ls_remote("x-access-token", "not-a-token") != 0
    finally:
        server.close()
