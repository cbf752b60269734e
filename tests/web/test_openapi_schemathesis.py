"""Schemathesis against a real ``devlink serve``: every API operation, generated requests, bounded and seeded.

Checks: no 5xx, every status is documented, and every response (errors included) matches its documented
schema and media type.  A few minutes at most: examples per operation are limited and the test has a timeout.

Nothing may leave the machine, so the fields that make devlink connect somewhere (a repository's location, an
account's host, API URL and proxy, the tracker's site, gateway and proxy) are replaced, before each call, with
loopback or local values (the GitHub stub for accounts, a closed port for the tracker); everything else,
including values devlink refuses before connecting, is sent as generated.
"""

import hashlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from devlink.domain.remotes import parse_remote
from github_stub import GitHubStub
from gitrepos import GitRepo
from servers import Server, start_server, stop_server

SEED = 20261201
MAX_EXAMPLES = 30
#: Not positive_data_acceptance: a request the schema allows may still be refused with 422 for what it means
#: (a location that does not exist, an empty name), which is devlink working as documented.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection, unsupported_method, allow_header_conformance]

_CLOSED_PORT = "http://127.0.0.1:9"  # discard: nothing listens, connecting fails at once
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, GitHubStub]]:
    root = tmp_path_factory.mktemp("fuzz")
    work = GitRepo(root / "work")
    bare = root / "real.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    work.git("remote", "add", "origin", str(bare))
    work.commit("FUZZ-1 something to index")
    work.git("push", "-q", "origin", "main")
    stub = GitHubStub()  # accounts link against it: a generated token is refused as GitHub would refuse it
    server = start_server(root / "home")
    try:
        with server.client() as client:  # something for the ids and keys to find
            created = client.post("/api/v1/repositories", json={"url": str(bare), "name": "fuzz-real"})
            assert created.status_code == 201, created.text
            assert client.post("/api/v1/projects", json={"key": "FUZZ", "name": "Fuzz"}).status_code == 201
        yield server, bare, stub
    finally:
        stop_server(server)
        stub.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed: tuple[Server, Path, GitHubStub]) -> Any:
    server = fuzzed[0]
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "request-timeout": 30,
        "max-redirects": 0,
    })
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


def _pick(generated: object, choices: list[Any]) -> Any:
    digest = hashlib.sha256(repr(generated).encode()).digest()
    return choices[digest[0] % len(choices)]


def _reaches_out(location: str) -> bool:
    """Whether linking ``location`` would make git connect to a host (a local path or file: URL does not)."""
    try:
        remote = parse_remote(location)
    except ValueError:
        return False  # refused before git runs
    return remote.is_url and not remote.location.lower().startswith("file:")


def _stay_local(case: Any, real_repository: Path, stub: GitHubStub) -> None:
    """Point every generated value that devlink would connect to at loopback; keep the rest as generated."""
    body = case.body
    if not isinstance(body, dict):
        return  # not an object: refused (422) before any route code runs
    path = case.operation.path
    if path == "/api/v1/repositories" and isinstance(body.get("url"), str) and _reaches_out(body["url"]):
        body["url"] = _pick(body["url"], [str(real_repository), f"file://{real_repository}", f"{_CLOSED_PORT}/r.git",
                                          "https://u:secret@127.0.0.1:9/r.git"])
    if path == "/api/v1/accounts":
        if not isinstance(body.get("url"), str) or _HTTP_URL.match(body["url"]):
            body["url"] = stub.web_url  # the default is github.com
        if isinstance(body.get("api_url"), str) and _HTTP_URL.match(body["api_url"]):
            body["api_url"] = stub.api_url
        if isinstance(body.get("proxy"), str) and _HTTP_URL.match(body["proxy"]):
            body["proxy"] = None
    if path == "/api/v1/tracker":  # an outside tracker is asked before it is kept: only ever a closed port here
        for name in ("url", "gateway_url"):
            if isinstance(body.get(name), str) and "://" in body[name]:  # any scheme's case: HTTPS:// too
                body[name] = _CLOSED_PORT
        if isinstance(body.get("proxy"), str):
            body["proxy"] = None


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.timeout(420)
def test_api_conforms_to_its_openapi_document(case: Any, fuzzed: tuple[Server, Path, GitHubStub]) -> None:
    server, real_repository, stub = fuzzed
    _stay_local(case, real_repository, stub)
    case.call_and_validate(checks=CHECKS, headers=server.auth())  # as the admin: every route runs


def test_the_fuzzed_server_logged_no_traceback(fuzzed: tuple[Server, Path, GitHubStub]) -> None:
    """After the run above: an error answered with a 4xx may still have hidden a crash; the log would show it."""
    log = fuzzed[0].log.read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 2000:][:6000]
    assert not fuzzed[2].errors, fuzzed[2].errors  # the stub's own bugs
