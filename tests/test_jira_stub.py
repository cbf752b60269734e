"""The Jira and devinfo stubs answer as the corpus describes, and refuse what it does not allow."""

import base64
import threading
from collections.abc import Iterator

import httpx
import pytest

from jira_stub import DevInfoStub, JiraStub

pytestmark = pytest.mark.timeout(30)

ADF = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Hi"}]}]}


def _world(jira: JiraStub) -> httpx.Client:
    jira.add_user("alice", email="alice@example.com", display_name="Alice Liddell",
                  account_id="5b10ac8d82e05b22cc7d4ef5")
    jira.add_user("bob", email="bob@example.com", display_name="Bob", email_visible=False)
    jira.add_project("KAFKA", "Kafka")
    jira.add_issue("KAFKA-1", summary="Fix it", assignee="alice")
    if jira.cloud:
        jira.add_api_token("bot@example.com", "cloud-token", "alice")
        auth = "Basic " + base64.b64encode(b"bot@example.com:cloud-token").decode()
    else:
        jira.add_pat("dc-token", "alice")
        auth = "Bearer dc-token"
    return httpx.Client(base_url=jira.url + jira.prefix, headers={"Authorization": auth}, timeout=5)


@pytest.fixture
def dc() -> Iterator[tuple[JiraStub, httpx.Client]]:
    with JiraStub(cloud=False) as jira, _world(jira) as client:
        yield jira, client


@pytest.fixture
def cloud() -> Iterator[tuple[JiraStub, httpx.Client]]:
    with JiraStub(cloud=True) as jira, _world(jira) as client:
        yield jira, client


def test_auth_is_refused_without_valid_credentials(dc: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = dc
    assert httpx.get(f"{jira.url}/rest/api/2/myself").status_code == 401
    bad = httpx.get(f"{jira.url}/rest/api/2/myself", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["errorMessages"]
    basic = base64.b64encode(b"alice:dc-token").decode()
    assert httpx.get(f"{jira.url}/rest/api/2/myself", headers={"Authorization": f"Basic {basic}"}).status_code == 401
    me = client.get("/myself")
    assert me.status_code == 200 and me.headers["X-AUSERNAME"] == "alice"
    assert {k: me.json()[k] for k in ("name", "key", "emailAddress", "displayName", "active")} == {
        "name": "alice", "key": "alice", "emailAddress": "alice@example.com", "displayName": "Alice Liddell",
        "active": True}
    page = httpx.get(f"{jira.url}/")  # not the REST API: a client can tell this is not Jira
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert client.get("/nothing/here").status_code == 404
    assert jira.violations == []


def test_cloud_auth_is_basic_email_and_api_token(cloud: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = cloud
    bearer = httpx.get(f"{jira.url}/rest/api/3/myself", headers={"Authorization": "Bearer cloud-token"})
    assert bearer.status_code == 401
    me = client.get("/myself").json()
    assert (me["accountId"], me["accountType"], me["emailAddress"]) == (
        "5b10ac8d82e05b22cc7d4ef5", "atlassian", "alice@example.com")
    assert httpx.get(f"{jira.url}/rest/api/2/myself").status_code == 404  # a Cloud stub serves v3 only


def test_server_info_reports_version_and_deployment(dc: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = dc
    info = httpx.get(f"{jira.url}/rest/api/2/serverInfo").json()  # documented as anonymous
    assert (info["baseUrl"], info["version"], info["versionNumbers"], info["deploymentType"]) == (
        jira.url, "10.3.4", [10, 3, 4], "Server")
    jira.version, jira.deployment_type = "8.20.1", "Cloud"
    info = client.get("/serverInfo").json()
    assert (info["versionNumbers"], info["deploymentType"]) == ([8, 20, 1], "Cloud")


def test_dc_lists_projects_and_cloud_pages_them(dc: tuple[JiraStub, httpx.Client],
                                                cloud: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = dc
    jira.add_project("ZOO", "Zookeeper")
    assert [p["key"] for p in client.get("/project").json()] == ["KAFKA", "ZOO"]
    assert client.get("/project/search").status_code == 404  # DC 10.3 has no project/search
    jira.deny("alice", "ZOO", "BROWSE_PROJECTS")
    assert [p["key"] for p in client.get("/project").json()] == ["KAFKA"]

    jira, client = cloud
    for key in ("AAA", "BBB", "CCC"):
        jira.add_project(key, key.title())
    jira.page_size = 2
    first = client.get("/project/search").json()
    assert (first["startAt"], first["maxResults"], first["total"], first["isLast"]) == (0, 2, 4, False)
    assert [p["key"] for p in first["values"]] == ["AAA", "BBB"]
    second = httpx.get(first["nextPage"], headers=client.headers).json()
    assert [p["key"] for p in second["values"]] == ["CCC", "KAFKA"] and second["isLast"] and "nextPage" not in second
    assert client.get("/project/search", params={"maxResults": 500}).status_code == 400  # maximum: 100
    assert jira.violations == [
        "GET /rest/api/3/project/search: query maxResults: 500 is greater than the maximum of 100"]


def test_issue_fields_and_hidden_issues(cloud: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = cloud
    issue = client.get("/issue/KAFKA-1", params={"fields": "summary,status,assignee"}).json()
    assert issue["key"] == "KAFKA-1" and set(issue["fields"]) == {"summary", "status", "assignee"}
    assert issue["fields"]["status"]["name"] == "To Do"
    assert issue["fields"]["status"]["statusCategory"]["key"] == "new"
    assert issue["fields"]["assignee"]["accountId"] == "5b10ac8d82e05b22cc7d4ef5"
    assert client.get(f"/issue/{issue['id']}").json()["fields"]["project"]["key"] == "KAFKA"
    jira.deny("alice", "KAFKA", "BROWSE_PROJECTS")
    hidden = client.get("/issue/KAFKA-1")
    assert hidden.status_code == 404 and hidden.json() == {
        "errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}
    assert client.get("/issue/NOPE-9").status_code == 404


def test_transitions_follow_the_workflow(dc: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = dc
    listed = client.get("/issue/KAFKA-1/transitions").json()["transitions"]
    assert [(t["id"], t["name"], t["to"]["name"]) for t in listed] == [("11", "Start Progress", "In Progress")]
    bad = client.post("/issue/KAFKA-1/transitions", json={"transition": {"id": "41"}})
    assert bad.status_code == 400 and "'41'" in bad.json()["errorMessages"][0]
    assert client.post("/issue/KAFKA-1/transitions", json={"transition": {"id": "11"}}).status_code == 204
    assert jira.status("KAFKA-1") == "In Progress"
    jira.require_field("Done", "resolution")
    refused = client.post("/issue/KAFKA-1/transitions", json={"transition": {"id": "41"}})
    assert refused.status_code == 400
    assert refused.json() == {"errorMessages": [], "errors": {"resolution": "Resolution is required."}}
    done = client.post("/issue/KAFKA-1/transitions", json={
        "transition": {"id": "41"}, "fields": {"resolution": {"name": "Fixed"}},
        "properties": [{"key": "devlink.1", "value": "sha-1"}]})  # issue properties, set with the transition
    assert done.status_code == 204 and jira.status("KAFKA-1") == "Done"
    assert client.get("/issue/KAFKA-1/properties/devlink.1").json() == {"key": "devlink.1", "value": "sha-1"}
    assert client.get("/issue/KAFKA-1/properties/other").status_code == 404
    assert client.get("/issue/KAFKA-1").json()["fields"]["resolution"] == {"name": "Fixed"}
    jira.deny("alice", "KAFKA", "TRANSITION_ISSUES")
    assert client.get("/issue/KAFKA-1/transitions").json() == {"transitions": []}
    assert jira.violations == []


def test_comments_dc_take_wiki_text_and_cloud_wants_adf(dc: tuple[JiraStub, httpx.Client],
                                                         cloud: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = dc
    props = [{"key": "devlink", "value": "sha-1"}]
    made = client.post("/issue/KAFKA-1/comment", json={"body": "Fixed in *abc*", "properties": props})
    assert made.status_code == 201 and made.json()["body"] == "Fixed in *abc*"
    assert made.json()["author"]["name"] == "alice"
    assert jira.comments("KAFKA-1")[0]["properties"] == props
    listed = client.get("/issue/KAFKA-1/comment", params={"expand": "properties"}).json()
    assert (listed["total"], listed["comments"][0]["properties"]) == (1, props)
    assert "properties" not in client.get("/issue/KAFKA-1/comment").json()["comments"][0]
    assert client.post("/issue/KAFKA-1/comment", json={"body": ADF}).status_code == 400  # DC: body is a string
    assert jira.violations == ["POST /rest/api/2/issue/KAFKA-1/comment: body['body']: "
                               f"{ADF!r} is not of type 'string'"]

    jira, client = cloud
    refused = client.post("/issue/KAFKA-1/comment", json={"body": "plain text"})
    assert refused.status_code == 400 and "Atlassian Document" in refused.json()["errorMessages"][0]
    assert len(jira.violations) == 1 and jira.comments("KAFKA-1") == []
    assert client.post("/issue/KAFKA-1/comment", json={"body": ADF}).status_code == 201
    assert jira.comments("KAFKA-1")[0]["body"] == ADF
    jira.deny("alice", "KAFKA", "ADD_COMMENTS")
    denied = client.post("/issue/KAFKA-1/comment", json={"body": ADF})
    assert denied.status_code == 400 and "comment" in denied.json()["errors"]


def test_worklog_wants_jiras_exact_started_format(dc: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = dc
    for started in ("2021-01-17T12:34:00Z", "2021-01-17T12:34:00.000+00:00", "2021-01-17 12:34:00.000+0000"):
        refused = client.post("/issue/KAFKA-1/worklog", json={"timeSpentSeconds": 60, "started": started})
        assert refused.status_code == 400 and "started" in refused.json()["errors"]
    made = client.post("/issue/KAFKA-1/worklog", json={"timeSpentSeconds": 12000, "comment": "Did it",
                                                       "started": "2021-01-17T12:34:00.000+0000"})
    assert made.status_code == 201
    assert (made.json()["timeSpent"], made.json()["comment"], made.json()["author"]["name"]) == ("3h 20m", "Did it",
                                                                                                 "alice")
    listed = client.get("/issue/KAFKA-1/worklog").json()
    assert listed["total"] == 1 and listed["worklogs"][0]["started"] == "2021-01-17T12:34:00.000+0000"
    assert jira.worklogs("KAFKA-1")[0]["timeSpentSeconds"] == 12000
    jira.deny("alice", "KAFKA", "WORK_ON_ISSUES")
    assert client.post("/issue/KAFKA-1/worklog", json={"timeSpentSeconds": 60,
                                                       "started": "2021-01-17T12:34:00.000+0000"}).status_code == 403
    assert jira.violations == []


def test_permission_checks(dc: tuple[JiraStub, httpx.Client], cloud: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = dc
    query = {"username": "bob", "permissions": "BROWSE_PROJECTS,ADD_COMMENTS", "issueKey": "KAFKA-1"}
    assert [u["name"] for u in client.get("/user/permission/search", params=query).json()] == ["bob"]
    jira.deny("bob", "KAFKA", "ADD_COMMENTS")
    assert client.get("/user/permission/search", params=query).json() == []
    assert client.get("/user/permission/search", params={**query, "permissions": "FLY"}).status_code == 400
    assert [u["name"] for u in client.get("/user/search", params={"username": "ALI"}).json()] == ["alice"]

    jira, client = cloud
    issue_id = int(jira.issues["KAFKA-1"]["id"])
    bob = jira.users["bob"]["accountId"]
    jira.deny("bob", "KAFKA", "WORK_ON_ISSUES")
    checked = client.post("/permissions/check", json={"accountId": bob, "projectPermissions": [
        {"permissions": ["ADD_COMMENTS", "WORK_ON_ISSUES"], "issues": [issue_id, 999]}]})
    assert checked.json() == {"globalPermissions": [], "projectPermissions": [
        {"issues": [issue_id], "permission": "ADD_COMMENTS", "projects": []},
        {"issues": [], "permission": "WORK_ON_ISSUES", "projects": []}]}
    assert client.post("/permissions/check", json={"accountId": bob, "extra": 1}).status_code == 400
    assert "Additional properties are not allowed" in jira.violations[-1]
    # Cloud's user search matches display names, and e-mail addresses only where they are visible
    assert [u["accountId"] for u in client.get("/user/search", params={"query": "bob@"}).json()] == []
    found = client.get("/user/search", params={"query": "bo"}).json()
    assert [u["displayName"] for u in found] == ["Bob"] and "emailAddress" not in found[0]


def test_remote_links_upsert_by_global_id(cloud: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = cloud
    link = {"globalId": "devlink:pr:1", "object": {"url": "https://git.example.com/pr/1", "title": "PR #1"}}
    created = client.post("/issue/KAFKA-1/remotelink", json=link)
    assert created.status_code == 201 and set(created.json()) == {"id", "self"}
    updated = client.post("/issue/KAFKA-1/remotelink", json={**link, "object": {**link["object"], "title": "PR #1 ✓"}})
    assert updated.status_code == 200 and updated.json()["id"] == created.json()["id"]
    assert [r["object"]["title"] for r in jira.remote_links("KAFKA-1")] == ["PR #1 ✓"]
    assert client.get("/issue/KAFKA-1/remotelink").json()[0]["globalId"] == "devlink:pr:1"
    assert client.post("/issue/KAFKA-1/remotelink", json={"object": {"url": "https://x"}}).status_code == 400
    assert jira.violations.pop() == (
        "POST /rest/api/3/issue/KAFKA-1/remotelink: body['object']: 'title' is a required property")
    assert client.delete("/issue/KAFKA-1/remotelink", params={"globalId": "devlink:pr:1"}).status_code == 204
    assert jira.remote_links("KAFKA-1") == []
    assert client.delete("/issue/KAFKA-1/remotelink", params={"globalId": "devlink:pr:1"}).status_code == 404
    assert client.delete("/issue/KAFKA-1/remotelink").status_code == 400  # globalId is required
    assert jira.violations == ["DELETE /rest/api/3/issue/KAFKA-1/remotelink: missing required query parameter "
                               "'globalId'"]


def test_violations_record_what_the_corpus_does_not_allow(dc: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = dc
    assert client.post("/issue/KAFKA-1/worklog", json={"timeSpentSeconds": "1h"}).status_code == 400
    assert client.get("/issue/KAFKA-1", params={"feilds": "summary"}).status_code == 400
    assert client.post("/issue/KAFKA-1/comment", content=b"{", headers={"Content-Type": "application/json"}
                       ).status_code == 400
    assert jira.violations == [
        "POST /rest/api/2/issue/KAFKA-1/worklog: body['timeSpentSeconds']: '1h' is not of type 'integer'",
        "GET /rest/api/2/issue/KAFKA-1: unknown query parameter 'feilds'",
        "POST /rest/api/2/issue/KAFKA-1/comment: body is not JSON"]
    method, path, _, headers, body = jira.requests[0]
    assert (method, path, body, headers["authorization"]) == ("POST", "/rest/api/2/issue/KAFKA-1/worklog",
                                                              {"timeSpentSeconds": "1h"}, "Bearer dc-token")
    assert jira.requests[1].query == {"feilds": "summary"}


def test_fail_next_and_hold_after(dc: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = dc
    jira.fail_next("GET", r"/myself$", 503, headers={"Retry-After": "7"}, times=2)
    assert [client.get("/myself").status_code for _ in range(3)] == [503, 503, 200]
    assert client.get("/myself").headers.get("Retry-After") is None
    reached = jira.hold_after("POST", r"/comment$")
    answers: list[int] = []
    poster = threading.Thread(target=lambda: answers.append(
        client.post("/issue/KAFKA-1/comment", json={"body": "held"}).status_code))
    poster.start()
    assert reached.wait(5)
    assert len(jira.comments("KAFKA-1")) == 1 and answers == []  # the effect is done, the answer is not sent
    jira.release()
    poster.join(5)
    assert answers == [201]
    assert client.post("/issue/KAFKA-1/comment", json={"body": "free"}).status_code == 201  # holds are one-shot


@pytest.fixture
def gateway() -> Iterator[tuple[DevInfoStub, httpx.Client]]:
    with DevInfoStub() as gw:
        gw.add_client("client-id", "client-secret", cloud_id="abc-123")
        token = httpx.post(f"{gw.url}/oauth/token", json={
            "grant_type": "client_credentials", "client_id": "client-id", "client_secret": "client-secret",
            "audience": "api.atlassian.com"}).json()
        assert (token["token_type"], token["expires_in"]) == ("Bearer", 3600)
        with httpx.Client(base_url=gw.devinfo_url("abc-123"), timeout=5,
                          headers={"Authorization": f"Bearer {token['access_token']}"}) as client:
            yield gw, client


def _repo(sequence: int, name: str = "kafka", **entities: list[dict[str, object]]) -> dict[str, object]:
    return {"id": "42", "name": name, "url": "https://git.example.com/kafka", "updateSequenceId": sequence, **entities}


def _commit(sha: str, sequence: int, *keys: str) -> dict[str, object]:
    return {"id": sha, "issueKeys": list(keys), "updateSequenceId": sequence, "hash": sha, "message": "KAFKA-1 fix",
            "author": {"name": "Ada", "email": "ada@example.com"}, "authorTimestamp": "2024-01-01T00:00:00Z",
            "displayId": sha[:7], "fileCount": 1, "url": f"https://git.example.com/kafka/commit/{sha}"}


def test_devinfo_token_bulk_and_update_sequence(gateway: tuple[DevInfoStub, httpx.Client]) -> None:
    gw, client = gateway
    gw.known_issue_keys = {"KAFKA-1"}
    bad = httpx.post(f"{gw.url}/oauth/token", json={"grant_type": "client_credentials", "client_id": "client-id",
                                                     "client_secret": "wrong", "audience": "api.atlassian.com"})
    assert bad.status_code == 401
    assert httpx.post(gw.devinfo_url("abc-123") + "/bulk", json={"repositories": []}).status_code == 401
    sent = client.post("/bulk", json={"repositories": [_repo(2, commits=[_commit("a1", 2, "KAFKA-1", "UTF-8")])],
                                      "properties": {"installation": "1"}})
    assert sent.status_code == 202
    assert sent.json() == {"acceptedDevinfoEntities": {"42": {"commits": ["a1"]}}, "failedDevinfoEntities": {},
                           "unknownIssueKeys": ["UTF-8"]}
    older = client.post("/bulk", json={"repositories": [_repo(1, "old", commits=[_commit("a1", 1, "KAFKA-9")])]})
    assert older.status_code == 202  # accepted, but an older updateSequenceId overwrites nothing
    assert gw.repositories["42"]["name"] == "kafka"
    assert gw.repositories["42"]["commits"][0]["issueKeys"] == ["KAFKA-1", "UTF-8"]
    assert client.get("/repository/42").json()["commits"][0]["id"] == "a1"
    assert client.delete("/repository/42/commit/a1", params={"_updateSequenceId": 1}).status_code == 202
    assert len(gw.repositories["42"]["commits"]) == 1  # stored data is newer than 1: kept
    assert client.delete("/repository/42/commit/a%31", params={"_updateSequenceId": 2}).status_code == 202
    assert gw.repositories["42"]["commits"] == []  # path segments are percent-decoded
    assert client.delete("/repository/42", params={"_updateSequenceId": 5}).status_code == 202
    assert gw.repositories == {} and client.get("/repository/42").status_code == 404
    assert gw.violations == []


def test_devinfo_enforces_documented_limits(gateway: tuple[DevInfoStub, httpx.Client]) -> None:
    gw, client = gateway
    keys = [f"KAFKA-{n}" for n in range(101)]
    assert client.post("/bulk", json={"repositories": [_repo(1, commits=[_commit("a1", 1, *keys)])]}
                       ).status_code == 400
    assert "is too long" in gw.violations[-1]
    many = [_commit(f"c{n}", 1, "KAFKA-1") for n in range(400)]
    too_many = [{**_repo(1, commits=many), "id": str(n)} for n in range(3)]
    assert client.post("/bulk", json={"repositories": too_many}).status_code == 413
    assert "maximum across all repositories is 1000" in gw.violations[-1]
    assert client.post("/bulk", json={"repositories": [_repo(1)], "properties": {"_x": "1"}}).status_code == 400
    assert client.post("/bulk", json={"repositories": [_repo(1, commits=[_commit("a b", 1, "KAFKA-1")])]}
                       ).json()["failedDevinfoEntities"]["42"]["commits"][0]["id"] == "a b"
    assert client.delete("/repository/42/tag/v1").status_code == 400  # entityType: commit, branch, pull_request
    undocumented = httpx.get(f"{gw.url}/jira/abc-123/rest/devinfo/0.10/repository/42", headers=client.headers)
    assert undocumented.status_code == 200 and "not a documented route" in gw.violations[-1]
    gw.expire_tokens()
    assert client.get("/repository/42").status_code == 401


def test_transition_fields_are_listed_on_request(dc: tuple[JiraStub, httpx.Client]) -> None:
    jira, client = dc
    jira.issues["KAFKA-1"]["status"] = "In Review"
    jira.require_field("Done", "resolution")
    listed = client.get("/issue/KAFKA-1/transitions", params={"expand": "transitions.fields"}).json()["transitions"]
    assert [(t["id"], list(t["fields"])) for t in listed] == [("41", ["resolution"])]
    assert listed[0]["fields"]["resolution"]["required"] is True
    assert jira.violations == []  # DC's parameter list lacks expand, its description documents it
