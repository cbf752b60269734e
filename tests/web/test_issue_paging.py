"""An issue with 5,000 work logs and comments: the page and the REST view show one page of each, with totals."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from devlink.config import load_settings
from devlink.errors import InvalidInput
from devlink.runtime import Runtime
from devlink.store.tracker import TrackerComment, TrackerIssue, TrackerUser, Worklog
from devlink.trackers.builtin import ISSUE_PAGE_SIZE, import_data, issue_view
from servers import Server

MANY = 5000


def fill(rt: Runtime, key: str) -> None:
    """``MANY`` worklogs (1 … MANY seconds, oldest first) and comments (c1 … cMANY) on a new issue ``key``."""
    with rt.sessions.begin() as session:
        import_data(session, {"users": [{"username": "ada", "emails": ["ada@example.com"]}],
                              "projects": [{"key": key.split("-")[0], "name": "Big"}],
                              "issues": [{"key": key, "summary": "busy"}]})
        issue_id = session.query(TrackerIssue.id).filter(TrackerIssue.key == key).scalar()
        ada = session.query(TrackerUser.id).filter(TrackerUser.username == "ada").scalar()
        started = datetime(2026, 1, 1, tzinfo=UTC)
        session.add_all(Worklog(issue_id=issue_id, author_id=ada, seconds=n, started=started, comment=f"w{n}")
                        for n in range(1, MANY + 1))
        session.add_all(TrackerComment(issue_id=issue_id, author_id=ada, body=f"c{n}", created_at=started)
                        for n in range(1, MANY + 1))


@pytest.fixture(scope="module")
def busy(server: Server) -> Iterator[Server]:
    rt = Runtime.open(load_settings(server.env))
    try:
        fill(rt, "BIG-1")
    finally:
        rt.close()
    yield server


def shown_seconds(page: str) -> list[int]:
    return [int(s) for s in re.findall(r'data-seconds="(\d+)"', page)]


def shown_comments(page: str) -> list[str]:
    return re.findall(r"<p>(c\d+)</p>", page)


def test_the_page_shows_the_latest_entries_and_the_totals(busy: Server) -> None:
    with busy.client() as client:
        page = client.get("/issues/BIG-1")
    assert page.status_code == 200
    text = page.text
    assert shown_seconds(text) == list(range(MANY - ISSUE_PAGE_SIZE + 1, MANY + 1))  # the latest 50, oldest first
    assert shown_comments(text) == [f"c{n}" for n in range(MANY - ISSUE_PAGE_SIZE + 1, MANY + 1)]
    assert f'<small data-total="worklogs">{MANY}</small>' in text
    assert f'<small data-total="comments">{MANY}</small>' in text
    assert f"1\u2013{ISSUE_PAGE_SIZE} of {MANY}, counted from the latest" in text
    assert 'href="?worklogs_page=2" rel="next">older</a>' in text and 'rel="prev"' not in text
    assert len(text) < 100_000  # 848 KB before it was paged


def test_older_pages_of_one_list_leave_the_others_alone(busy: Server) -> None:
    with busy.client() as client:
        second = client.get("/issues/BIG-1", params={"worklogs_page": 2}).text
        last = client.get("/issues/BIG-1", params={"worklogs_page": MANY // ISSUE_PAGE_SIZE, "comments_page": 3})
        past = client.get("/issues/BIG-1", params={"worklogs_page": MANY // ISSUE_PAGE_SIZE + 1}).text
        refused = [client.get("/issues/BIG-1", params={"worklogs_page": bad}).status_code
                   for bad in ("0", "-1", "two", str(10**20))]
    assert shown_seconds(second) == list(range(MANY - 2 * ISSUE_PAGE_SIZE + 1, MANY - ISSUE_PAGE_SIZE + 1))
    assert shown_comments(second)[-1] == f"c{MANY}"  # comments still on their latest page
    assert 'href="?worklogs_page=1" rel="prev">newer</a>' in second and 'href="?worklogs_page=3"' in second
    assert shown_seconds(last.text) == list(range(1, ISSUE_PAGE_SIZE + 1))
    assert shown_comments(last.text)[0] == f"c{MANY - 3 * ISSUE_PAGE_SIZE + 1}"
    assert 'href="?worklogs_page=100&amp;comments_page=4" rel="next"' in last.text  # the other list's page stays
    assert 'href="?worklogs_page=101' not in last.text  # nothing older than the oldest
    assert shown_seconds(past) == [] and f"none here: {MANY} in all" in past
    assert refused == [422, 422, 422, 422]


def test_the_api_returns_the_latest_entries_totals_and_pages(busy: Server) -> None:
    with busy.client() as client:
        default = client.get("/api/v1/issues/BIG-1").json()
        oldest = client.get("/api/v1/issues/BIG-1", params={"limit": 10, "offset": MANY - 5}).json()
        pages = [client.get("/api/v1/issues/BIG-1", params={"limit": 1000, "offset": offset}).json()
                 for offset in range(0, MANY + 1, 1000)]
        refused = [client.get("/api/v1/issues/BIG-1", params=params)
                   for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"})]
    assert default["totals"] == {"comments": MANY, "worklogs": MANY, "history": 0}
    assert [w["seconds"] for w in default["worklogs"]] == list(range(MANY - ISSUE_PAGE_SIZE + 1, MANY + 1))
    assert [c["body"] for c in default["comments"]][-1] == f"c{MANY}"
    assert {"key", "project", "summary", "status", "transitions", "comments", "worklogs", "history"} <= set(default)
    assert [w["seconds"] for w in oldest["worklogs"]] == [1, 2, 3, 4, 5]
    # offset += limit walks every entry once, newest page first
    walked = [w["seconds"] for page in reversed(pages) for w in page["worklogs"]]
    assert walked == list(range(1, MANY + 1)) and pages[-1]["worklogs"] == []
    assert [(r.status_code, r.json()["type"]) for r in refused] == [(422, "invalid")] * 4


def test_issue_view_pages_on_both_engines(runtime: Runtime) -> None:
    fill(runtime, "BIG-7")
    with runtime.sessions() as session:
        view = issue_view(session, "BIG-7", limit=3, offsets={"worklogs": MANY - 2})
        with pytest.raises(InvalidInput, match="limit must be between 1 and 1000"):
            issue_view(session, "BIG-7", limit=0)
        with pytest.raises(InvalidInput, match="offset must be 0 or more"):
            issue_view(session, "BIG-7", offset=-3)
    assert [w["seconds"] for w in view["worklogs"]] == [1, 2]
    assert [c["body"] for c in view["comments"]] == [f"c{n}" for n in range(MANY - 2, MANY + 1)]
    assert view["totals"] == {"comments": MANY, "worklogs": MANY, "history": 0}
