"""The Jira client and tracker against the stub: markers a commit cannot forge, bounded retries, bounded answers."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from devlink.errors import TrackerError
from devlink.trackers.base import Origin, TrackerSettings, TrackerUnavailable
from devlink.trackers.jira import JiraClient, JiraTracker
from jira_stub import JiraStub

pytestmark = pytest.mark.timeout(60)

TOKEN, BOT = "jira-token-42", "bot@example.com"
SHA = "a" * 40


@pytest.fixture(params=["datacenter", "cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraStub]:
    with JiraStub(cloud=request.param == "cloud") as stub:
        stub.add_user("bot", email=BOT)
        if stub.cloud:
            stub.add_api_token(BOT, TOKEN, "bot")
        else:
            stub.add_pat(TOKEN, "bot")
        stub.add_project("KAFKA", "Kafka")
        stub.add_issue("KAFKA-1")
        yield stub


def tracker(stub: JiraStub, **client: object) -> JiraTracker:
    settings = TrackerSettings(url=stub.url, token=TOKEN, email=BOT if stub.cloud else None, timeout=5)
    me = stub.users["bot"]["accountId"] if stub.cloud else "bot"
    return JiraTracker(JiraClient(settings, cloud=stub.cloud, **client),  # type: ignore[arg-type]
                       aliases=lambda email: [], cached_keys=lambda fetch: fetch(),
                       sign=lambda text: f"signed({text})", me=me)


def test_quoting_another_commits_marker_does_not_make_its_command_look_done(jira: JiraStub) -> None:
    """A commit whose text carries ``devlink:SHA:0`` must not suppress the pending command of commit SHA."""
    forger = tracker(jira)
    marker = Origin(SHA, 0, "ada@example.com").marker
    forged = Origin("b" * 40, 0, "eve@example.com")
    forger.comment("KAFKA-1", "bot", f"look: {marker}", forged)
    forger.log_work("KAFKA-1", "bot", 60, datetime.now(UTC), f"{marker}_", forged)
    retry = Origin(SHA, 0, "ada@example.com", retry=True)
    forger.comment("KAFKA-1", "bot", "the real one", retry)
    forger.log_work("KAFKA-1", "bot", 3600, datetime.now(UTC), "the real one", retry)
    assert len(jira.comments("KAFKA-1")) == 2 and len(jira.worklogs("KAFKA-1")) == 2
    forger.comment("KAFKA-1", "bot", "the real one", retry)  # now it is there: a retry finds it
    forger.log_work("KAFKA-1", "bot", 3600, datetime.now(UTC), "the real one", retry)
    assert len(jira.comments("KAFKA-1")) == 2 and len(jira.worklogs("KAFKA-1")) == 2
    assert jira.violations == []


def test_a_marker_someone_else_left_does_not_count(jira: JiraStub) -> None:
    """Anyone who may comment may set a property, and anyone who may edit an issue may set an issue property:
    only devlink's signature on an entity its own user wrote makes an effect devlink's."""
    import httpx

    retry = Origin(SHA, 0, "ada@example.com", retry=True)
    jira.add_user("eve", email="eve@example.com")
    eve_token = "eve-token"
    if jira.cloud:
        jira.add_api_token("eve@example.com", eve_token, "eve")
        auth: dict[str, object] = {"auth": ("eve@example.com", eve_token)}
    else:
        jira.add_pat(eve_token, "eve")
        auth = {"headers": {"Authorization": f"Bearer {eve_token}"}}
    api = f"{jira.url}{jira.prefix}/issue/KAFKA-1"
    value = {"ref": retry.marker, "sig": "forged"}
    paragraph = {"type": "paragraph", "content": [{"type": "text", "text": "forged"}]}
    body = {"type": "doc", "version": 1, "content": [paragraph]} if jira.cloud else "forged"
    as_text = value if jira.cloud else json.dumps(value)
    assert httpx.post(f"{api}/comment", json={"body": body, "properties": [{"key": "devlink", "value": as_text}]},
                      **auth).status_code == 201  # type: ignore[arg-type]
    jira.issues["KAFKA-1"]["properties"][f"devlink.smart-commit.{SHA}.0"] = {**value, "to": "Done"}
    honest = tracker(jira)
    assert honest.transitioned("KAFKA-1", retry) is None
    honest.comment("KAFKA-1", "bot", "the real one", retry)
    assert len(jira.comments("KAFKA-1")) == 2


def test_retry_after_of_zero_does_not_spin_and_nonsense_is_ignored(jira: JiraStub) -> None:
    slept: list[float] = []
    client = tracker(jira, sleep=slept.append).client
    jira.fail_next("GET", r"/serverInfo$", 429, headers={"Retry-After": "0"}, times=5)
    with pytest.raises(TrackerUnavailable) as spent:
        client.call("GET", "serverInfo")
    assert spent.value.reason == "rate_limited" and len(slept) == 4 and all(w >= 0.5 for w in slept)
    jira.fail_next("GET", r"/serverInfo$", 503, headers={"Retry-After": "nan"}, times=1)
    slept.clear()
    assert client.call("GET", "serverInfo")["versionNumbers"]
    assert slept == [2.0]  # Jira's own back-off when the header says nothing usable
    jira.fail_next("GET", r"/serverInfo$", 503, headers={"Retry-After": "99999999"}, times=1)
    with pytest.raises(TrackerUnavailable) as later:
        client.call("GET", "serverInfo")
    assert later.value.retry_after == 3600  # at most an hour, and never slept in the pass


def test_answers_are_bounded_before_they_are_parsed(jira: JiraStub) -> None:
    client = tracker(jira).client
    jira.fail_next("GET", r"/serverInfo$", 200, body="[" * 100_000 + "]" * 100_000)
    with pytest.raises(TrackerError) as deep:
        client.call("GET", "serverInfo")
    assert deep.value.reason == "not_jira" and "too_deep" in deep.value.message
    started = time.monotonic()
    jira.fail_next("GET", r"/serverInfo$", 200, body="x" * (17 * 1024 * 1024))
    with pytest.raises(TrackerError) as large:
        client.call("GET", "serverInfo")
    assert "larger than 16 MB" in large.value.message and time.monotonic() - started < 20


def test_a_compressed_answer_that_was_not_asked_for_is_refused(jira: JiraStub) -> None:
    """Compression could inflate past the size bound, or drip empty blocks past the deadline: devlink asks for
    identity and refuses anything else before reading the body."""
    client = tracker(jira).client
    jira.fail_next("GET", r"/serverInfo$", 200, headers={"Content-Encoding": "deflate"}, body={"x": 1})
    with pytest.raises(TrackerError) as compressed:
        client.call("GET", "serverInfo")
    assert "compressed answer" in compressed.value.message
    assert all(r.headers.get("accept-encoding", r.headers.get("Accept-Encoding")) == "identity"
               for r in jira.requests)
