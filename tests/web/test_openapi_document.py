"""The OpenAPI document says what the API answers: every error as problem+json, bounded ids; and ids obey it."""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from github_world import GitHubWorld
from gitrepos import GitRepo
from servers import Server

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
WRITES = {"post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document(server: Server) -> dict[str, Any]:
    with server.client() as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_every_error_response_is_a_problem_document(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in json.dumps(document)
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}
    assert {"type", "title", "status", "hint", "errors"} <= set(problem["properties"])
    for method, path, operation in _operations(document):
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        assert errors, (method, path)
        for code, response in errors.items():
            assert response["content"] == PROBLEM, (method, path, code)
            assert response["description"], (method, path, code)


def test_every_operation_lists_the_statuses_it_can_answer(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        codes = set(operation["responses"])
        assert {"400", "500"} <= codes, (method, path)  # the host check; a setting that does not work
        if method in WRITES and not path.startswith("/hooks/"):
            assert "403" in codes, (method, path)  # the cross-site check
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in codes, (method, path)
        if "{repository_id}" in path or "{account}" in path:
            assert "404" in codes, (method, path)
        assert any(code.startswith(("2", "3")) for code in codes), (method, path)
    created = document["paths"]["/api/v1/repositories"]["post"]["responses"]
    assert {"201", "409", "422"} <= set(created) and "200" not in created
    confirm, start = (document["paths"]["/oauth/{kind}/start"][m]["responses"] for m in ("get", "post"))
    assert {"200", "422"} <= set(confirm) and "text/html" in confirm["200"]["content"]  # a page; it never redirects
    assert {"303", "403", "422"} <= set(start) and "200" not in start
    callback = document["paths"]["/oauth/{kind}/callback"]["get"]["responses"]
    assert {"303", "403", "404"} <= set(callback) and "200" not in callback
    assert {"202", "401", "413"} <= set(document["paths"]["/hooks/git"]["post"]["responses"])


def test_row_ids_are_bounded_in_the_document(document: dict[str, Any]) -> None:
    seen = 0
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                assert (parameter["schema"]["minimum"], parameter["schema"]["maximum"]) == (1, 2**63 - 1), (
                    method, path, parameter)
                seen += 1
    assert seen >= 4  # get, patch, delete, sync of /api/v1/repositories/{repository_id}


def test_the_default_docs_pages_are_replaced(server: Server) -> None:
    with server.client() as client:
        assert client.get("/redoc").status_code == 404
        docs = client.get("/docs")
        assert docs.status_code == 200
        assert "/docs/assets/swagger-ui-bundle.js" in docs.text and "/static/docs.js" in docs.text
        assert "cdn" not in docs.text.lower() and "<script>" not in docs.text  # no inline script
        assert client.get("/docs/assets/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
        assert client.get("/docs/assets/index.html").status_code == 404  # only the two files it needs


BAD_IDS = [str(2**63), str(2**64), "99999999999999999999999", "-1", "0", "%D9%A3", "%C2%B3", "%EF%BC%91", "+{id}",
           "%20{id}", "{id}_0", "{id}.0", "0x{id}", "1e1", "99999"]


@pytest.mark.parametrize("raw", BAD_IDS)
def test_ids_out_of_range_or_not_plain_digits_find_no_row(server: Server, tmp_path: Path, raw: str) -> None:
    repo = GitRepo(tmp_path / "work")
    bare = tmp_path / "ids.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    repo.git("remote", "add", "origin", str(bare))
    repo.commit("IDS-1 x")
    repo.git("push", "-q", "origin", "main")
    with server.client() as client:
        created = client.post("/api/v1/repositories", json={"url": str(bare), "name": f"ids-{len(raw)}-{hash(raw)}"})
        assert created.status_code == 201, created.text
        real = created.json()["id"]
        server.wait_idle(real)
        ident = raw.format(id=real)
        for method, path in (("GET", "/api/v1/repositories/{}"), ("PATCH", "/api/v1/repositories/{}"),
                             ("POST", "/api/v1/repositories/{}/sync"), ("DELETE", "/api/v1/repositories/{}"),
                             ("POST", "/repositories/{}/sync"), ("POST", "/repositories/{}/remove")):
            answer = client.request(method, path.format(ident), json={"smart_commits": False})
            assert answer.status_code in (404, 422), (method, path, ident, answer.status_code, answer.text)
            assert answer.headers["content-type"] == "application/problem+json", (method, path, ident)
        view = client.get(f"/api/v1/repositories/{real}").json()
        assert view["smart_commits"] is True and view["sync"]["state"] == "idle"
        assert client.delete(f"/api/v1/repositories/{real}").status_code == 204


def test_what_schemathesis_found_is_refused_as_bad_input(server: Server, github: GitHubWorld) -> None:
    """Each of these answered 500 or 502 (or was accepted) before; each is the caller's mistake: 422."""
    base = {"name": "octo", "url": github.stub.web_url, "token": "ghp_wrong"}
    app = {"name": "octo", "url": github.stub.web_url, "app_id": "1", "private_key": "not a key",
           "installation_id": "7"}
    with server.client() as client:
        for body in ({**base, "proxy": "not a url"}, {**base, "proxy": "ftp://proxy.example"},  # 500 ValueError
                     {**base, "api_url": "not a url"},  # 502 network
                     {**base, "timeout": 1e300},  # 502 "timestamp out of range"
                     {**app, "installation_id": "\x93\x02"},  # 500 int()
                     app,  # 502: githubkit reported the unusable key as a network error
                     {**base, "auto_link": 0}):  # accepted as false
            answer = client.post("/api/v1/accounts", json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        assert client.get("/api/v1/accounts").json() == []
        assert client.patch("/api/v1/repositories/1", json={"smart_commits": 0}).status_code == 422
        allow = client.options("/api/v1/repositories")
        assert (allow.status_code, allow.json()["type"]) == (405, "method_not_allowed")
        assert set(allow.headers["allow"].split(", ")) == {"GET", "POST"}
