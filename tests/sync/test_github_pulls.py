"""Pull requests of linked GitHub repositories, against the stub: fields, keys, backfill, soft sync, quota, failures.

Every sync runs through ``run_sync`` (the job the queue runs), so what a test reads back is what a user sees:
the ``pull_requests`` rows, the issue links behind ``queries.development``, and the repository's recorded error.
"""

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from devlink.hosts.github import GitHubClient
from devlink.runtime import Runtime
from devlink.store.models import Account, IssueLink, PullRequest, Repository
from devlink.store.queries import development, repository_view
from devlink.sync.accounts import AccountOptions, configure_host, discover, link_account
from devlink.sync.jobs import run_sync
from github_stub import Request
from github_world import TOKEN, GitHubWorld

DAY_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """5xx and timeouts are retried with back-off; a test need not wait whole seconds for it."""
    monkeypatch.setattr(GitHubClient, "retry_backoff", 0.01)


def link(runtime: Runtime, github: GitHubWorld, name: str = "api", **extra: Any) -> tuple[int, int]:
    """Link octo with a token and its one repository ``name``; return (account id, repository id)."""
    github.repo("octo", name)
    account_id, found = link_account(runtime, AccountOptions(
        name="octo", web_url=github.stub.web_url, token=TOKEN, link="all", **extra))
    [repository_id] = found.linked
    return account_id, repository_id


def pulls(runtime: Runtime, repository_id: int) -> dict[int, PullRequest]:
    with runtime.sessions() as session:
        rows = session.scalars(select(PullRequest).where(PullRequest.repository_id == repository_id))
        return {row.number: row for row in rows}


def repository(runtime: Runtime, repository_id: int) -> Repository:
    with runtime.sessions() as session:
        row = session.get(Repository, repository_id)
        assert row is not None
        return row


def account(runtime: Runtime, account_id: int) -> Account:
    with runtime.sessions() as session:
        row = session.get(Account, account_id)
        assert row is not None
        return row


def linked_pulls(runtime: Runtime, key: str) -> list[int]:
    with runtime.sessions() as session:
        return sorted(p["number"] for p in development(session, key)["pull_requests"])


def pull_calls(github: GitHubWorld, since: int) -> list[Request]:
    """The API requests about pull requests made after ``since`` (an index into the stub's log)."""
    return [r for r in github.stub.requests[since:] if "/pulls" in r.path]


def remaining(github: GitHubWorld) -> int:
    """The stub's budget for octo's token, read from /rate_limit (which costs nothing, as on GitHub)."""
    answer = httpx.get(f"{github.stub.api_url}/rate_limit", headers={"Authorization": f"token {TOKEN}"})
    return int(answer.json()["resources"]["core"]["remaining"])


def sync(runtime: Runtime, repository_id: int, *, full: bool = False, trigger: str = "soft") -> None:
    run_sync(runtime, repository_id, full=full, trigger=trigger)


def error_of(runtime: Runtime, repository_id: int) -> tuple[str | None, str | None]:
    row = repository(runtime, repository_id)
    return row.last_error_reason, row.last_error_message


def skipped(runtime: Runtime, repository_id: int) -> dict[str, Any]:
    """What the repository's syncs skipped or deferred, as the API and the CLI show it (``sync.skipped``)."""
    with runtime.sessions() as session:
        row = session.get(Repository, repository_id)
        assert row is not None
        return dict(repository_view(row)["sync"]["skipped"])


def assert_deferred(runtime: Runtime, repository_id: int, resumes_at: datetime, message: str) -> None:
    """Pull requests wait for the API budget: a note with the time they resume, and the sync did not fail."""
    row = repository(runtime, repository_id)
    assert (row.sync_state, error_of(runtime, repository_id)) == ("idle", (None, None))
    note = skipped(runtime, repository_id)["pull_requests"]
    assert note["reason"] == "rate_limited" and message in note["message"], note
    assert_near(datetime.fromisoformat(note["resumes_at"]), resumes_at)
    assert_near(row.next_sync_at, resumes_at)  # the scheduler comes back then, not after the interval


def assert_near(moment: datetime | None, expected: datetime, slack: float = 30) -> None:
    assert moment is not None
    assert abs((moment - expected).total_seconds()) <= slack, (moment, expected)


# -- what is stored ----------------------------------------------------------------


def test_backfill_stores_every_field_of_each_state_and_links_keys(runtime: Runtime, github: GitHubWorld) -> None:
    stub = github.stub
    _account_id, repository_id = link(runtime, github)
    t = DAY_AGO
    stub.add_pull("octo", "api", title="API-1 Rate limits", body="Also fixes API-2.", head="feature/API-3-budget",
                  base="develop", user="ada", comments=3, review_comments=2, requested_reviewers=["dave", "erin"],
                  created_at=t, updated_at=t)
    stub.add_review("octo", "api", 1, "alice", "APPROVED", submitted_at=t + timedelta(minutes=1))
    stub.add_review("octo", "api", 1, "alice", "COMMENTED", submitted_at=t + timedelta(minutes=2))
    stub.add_review("octo", "api", 1, "bob", "APPROVED", submitted_at=t + timedelta(minutes=3))
    stub.add_review("octo", "api", 1, "bob", "CHANGES_REQUESTED", submitted_at=t + timedelta(minutes=4))
    stub.add_review("octo", "api", 1, "carol", "COMMENTED", submitted_at=t + timedelta(minutes=5))
    stub.add_review("octo", "api", 1, "erin", "APPROVED", submitted_at=t + timedelta(minutes=6))
    stub.update_pull("octo", "api", 1, requested_reviewers=["dave", "erin"],  # erin asked to review again
                     updated_at=t + timedelta(minutes=7))
    stub.add_pull("octo", "api", title="Draft work", head="spike", draft=True,
                  created_at=t + timedelta(minutes=10), updated_at=t + timedelta(minutes=10))
    stub.add_pull("octo", "api", title="Merged API-4", head="fix", merged=True,
                  created_at=t + timedelta(minutes=11), updated_at=t + timedelta(minutes=12))
    stub.add_pull("octo", "api", title="Abandoned", head="old", state="closed",
                  created_at=t + timedelta(minutes=13), updated_at=t + timedelta(minutes=14))

    sync(runtime, repository_id, full=True)

    assert error_of(runtime, repository_id) == (None, None)
    rows = pulls(runtime, repository_id)
    assert {n: r.state for n, r in rows.items()} == {1: "open", 2: "draft", 3: "merged", 4: "closed"}
    first = rows[1]
    assert (first.title, first.description, first.source_branch, first.target_branch, first.author) == (
        "API-1 Rate limits", "Also fixes API-2.", "feature/API-3-budget", "develop", "ada")
    assert first.url == f"{stub.web_url}/octo/api/pull/1"
    assert first.comment_count == 5  # conversation comments + review comments
    assert (first.created_at, first.updated_at, first.merged_at) == (t, t + timedelta(minutes=7), None)
    assert json.loads(first.reviewers) == [
        {"login": "alice", "state": "approved"},  # a later comment does not undo an approval
        {"login": "bob", "state": "changes_requested"},  # a later change request does
        {"login": "carol", "state": "commented"},
        {"login": "erin", "state": "requested"},  # asked again after approving: pending
        {"login": "dave", "state": "requested"},
    ]
    assert rows[3].merged_at == t + timedelta(minutes=12) and rows[2].merged_at is None
    assert rows[3].external_id == str(stub.repo("octo", "api")["pulls"][3]["id"])
    # keys from the title, the description and the source branch
    assert linked_pulls(runtime, "API-1") == [1]
    assert linked_pulls(runtime, "API-2") == [1]
    assert linked_pulls(runtime, "API-3") == [1]
    assert linked_pulls(runtime, "API-4") == [3]
    with runtime.sessions() as session:
        panel = development(session, "API-3")
        links = session.scalars(select(IssueLink).where(IssueLink.entity_type == "pull_request")).all()
    assert {link.key for link in links} == {"API-1", "API-2", "API-3", "API-4"}
    assert panel["summary"]["pull_requests"] == 1 and panel["summary"]["pull_request_states"] == {"open": 1}
    [view] = panel["pull_requests"]
    assert view["comment_count"] == 5 and view["url"] == f"{stub.web_url}/octo/api/pull/1"
    assert view["reviewers"][0] == {"login": "alice", "state": "approved"}


def test_backfill_pages_through_more_than_a_hundred_and_soft_sync_stops_at_the_first_unchanged(
    runtime: Runtime, github: GitHubWorld
) -> None:
    stub = github.stub
    _account_id, repository_id = link(runtime, github)
    for i in range(1, 131):
        moment = DAY_AGO + timedelta(minutes=i)
        stub.add_pull("octo", "api", title=f"API-{i} change {i}", head=f"topic-{i}", created_at=moment,
                      updated_at=moment)

    mark = len(stub.requests)
    sync(runtime, repository_id, full=True)
    assert error_of(runtime, repository_id) == (None, None)
    assert sorted(pulls(runtime, repository_id)) == list(range(1, 131))
    lists = [r for r in pull_calls(github, mark) if re.search(r"/pulls$", r.path)]
    assert len(lists) == 2  # page 1, then page 2 through the Link header
    assert lists[0].query["per_page"] == "100" and "page" not in lists[0].query
    assert lists[1].query["page"] == "2" and lists[1].query["per_page"] == "100"
    assert (lists[0].query["sort"], lists[0].query["direction"], lists[0].query["state"]) == ("updated", "desc", "all")

    # nothing changed: one conditional request, answered 304, and no quota spent
    before, mark = remaining(github), len(stub.requests)
    sync(runtime, repository_id)
    [only] = pull_calls(github, mark)
    assert only.headers.get("if-none-match") and "page" not in only.query
    assert remaining(github) == before

    # one pull request changed (its title now names another key): page 1, that pull request, its reviews
    stub.update_pull("octo", "api", 42, title="API-999 renamed")
    mark = len(stub.requests)
    sync(runtime, repository_id)
    calls = pull_calls(github, mark)
    assert [re.sub(r"^/api/v3/repos/octo/api", "", r.path) for r in calls] == [
        "/pulls", "/pulls/42", "/pulls/42/reviews"]
    assert pulls(runtime, repository_id)[42].title == "API-999 renamed"
    assert linked_pulls(runtime, "API-42") == []  # the old key's link is gone
    assert linked_pulls(runtime, "API-999") == [42]
    assert linked_pulls(runtime, "API-41") == [41]


def test_a_second_backfill_of_an_unchanged_repository_costs_no_quota(runtime: Runtime, github: GitHubWorld) -> None:
    stub = github.stub
    _account_id, repository_id = link(runtime, github)
    for i in range(1, 106):
        stub.add_pull("octo", "api", title=f"API-{i}", head=f"b{i}", created_at=DAY_AGO + timedelta(minutes=i))
    sync(runtime, repository_id, full=True)
    before, mark = remaining(github), len(stub.requests)
    sync(runtime, repository_id, full=True)
    calls = pull_calls(github, mark)
    assert len(calls) == 2 and all(r.headers.get("if-none-match") for r in calls)  # both pages, both 304
    assert remaining(github) == before
    assert len(pulls(runtime, repository_id)) == 105


def test_soft_sync_finds_new_pull_requests_and_changed_reviews(runtime: Runtime, github: GitHubWorld) -> None:
    stub = github.stub
    _account_id, repository_id = link(runtime, github)
    stub.add_pull("octo", "api", title="API-1 first", head="one", created_at=DAY_AGO)
    sync(runtime, repository_id, full=True)
    stub.add_pull("octo", "api", title="API-2 second", head="two", requested_reviewers=["bob"])
    stub.add_review("octo", "api", 1, "bob", "APPROVED")
    stub.update_pull("octo", "api", 1, merged=True)
    sync(runtime, repository_id)
    rows = pulls(runtime, repository_id)
    assert rows[1].state == "merged" and rows[1].merged_at is not None
    assert json.loads(rows[1].reviewers) == [{"login": "bob", "state": "approved"}]
    assert json.loads(rows[2].reviewers) == [{"login": "bob", "state": "requested"}]
    assert linked_pulls(runtime, "API-2") == [2]


def test_a_soft_sync_cut_short_resumes_where_it_stopped(runtime: Runtime, github: GitHubWorld) -> None:
    """A page whose pull requests were not all stored must not count as 'seen' the next time (its ETag)."""
    stub = github.stub
    _account_id, repository_id = link(runtime, github)
    for i in range(1, 4):
        stub.add_pull("octo", "api", title=f"API-{i}", head=f"b{i}", created_at=DAY_AGO + timedelta(minutes=i))
    stub.fail_next("GET", "/pulls/2", 502, times=3)  # every attempt of one pull request fails
    sync(runtime, repository_id)
    assert error_of(runtime, repository_id)[0] == "server"
    assert sorted(pulls(runtime, repository_id)) == [3]  # newest first: 3 stored, stopped at 2
    sync(runtime, repository_id)
    assert error_of(runtime, repository_id) == (None, None)
    assert sorted(pulls(runtime, repository_id)) == [1, 2, 3]


# -- quota -------------------------------------------------------------------------


def test_rate_limit_headers_are_recorded_on_the_account(runtime: Runtime, github: GitHubWorld) -> None:
    reset = int(time.time()) + 1234
    github.stub.set_rate_limit(4321, limit=5000, reset=reset)
    account_id, repository_id = link(runtime, github)
    github.stub.add_pull("octo", "api", title="API-1", head="b")
    sync(runtime, repository_id, full=True)
    row = account(runtime, account_id)
    assert row.rate_limit == 5000
    assert row.rate_remaining == remaining(github) < 4321
    assert row.rate_reset_at == datetime.fromtimestamp(reset, UTC)


def test_at_the_reserve_scheduled_work_waits_for_the_reset_and_webhook_work_goes_on(
    runtime: Runtime, github: GitHubWorld
) -> None:
    stub = github.stub
    account_id, repository_id = link(runtime, github)
    stub.add_pull("octo", "api", title="API-1", head="b1", created_at=DAY_AGO)
    sync(runtime, repository_id, full=True)
    reset = int(time.time()) + 900  # not the sync interval: next_sync_at must follow the reset
    stub.set_rate_limit(120, limit=5000, reset=reset)  # the reserve is 10 % of 5000
    discover(runtime, account_id)  # any call tells devlink the budget
    assert account(runtime, account_id).rate_remaining is not None
    assert account(runtime, account_id).rate_remaining <= 120  # type: ignore[operator]
    stub.add_pull("octo", "api", title="API-2", head="b2")
    sha = github.work["octo/api"].commit("API-2 work")
    github.work["octo/api"].git("push", "-q", "origin", "main")

    mark, before = len(stub.requests), remaining(github)
    [result] = run_sync(runtime, repository_id, full=False, trigger="schedule")
    assert pull_calls(github, mark) == [] and remaining(github) == before
    # a wait, not a failure: commits synced, pull requests deferred to the reset the host gave
    assert_deferred(runtime, repository_id, datetime.fromtimestamp(reset, UTC), "reserve")
    assert result.commits_new == 1 and result.retry_after is not None
    assert abs(result.retry_after - (reset - time.time())) < 30
    assert result.entity_errors["pull_requests"]["reason"] == "rate_limited"
    assert 2 not in pulls(runtime, repository_id)
    with runtime.sessions() as session:  # commits still sync: git costs no quota
        assert [c["sha"] for c in development(session, "API-2")["commits"]] == [sha]

    sync(runtime, repository_id, trigger="hook")
    assert error_of(runtime, repository_id) == (None, None)
    assert 2 in pulls(runtime, repository_id) and remaining(github) < before
    assert skipped(runtime, repository_id) == {}  # they synced: the note is gone


def test_after_the_reset_the_schedulers_soft_sync_fetches_the_deferred_pull_requests(
    runtime: Runtime, github: GitHubWorld
) -> None:
    from devlink.sync.jobs import schedule_due

    stub = github.stub
    account_id, repository_id = link(runtime, github)
    sync(runtime, repository_id, full=True)
    stub.add_pull("octo", "api", title="API-1", head="b1")
    reset = time.time() + 3
    stub.set_rate_limit(100, limit=5000, reset=reset)
    discover(runtime, account_id)  # devlink learns the budget is at its reserve
    sync(runtime, repository_id, trigger="schedule")
    assert_deferred(runtime, repository_id, datetime.fromtimestamp(reset, UTC), "reserve")
    assert schedule_due(runtime, lambda *_: None) == []  # not before the reset
    time.sleep(max(0.0, reset - time.time()) + 1.5)  # the host's new hour: a fresh budget

    queued: list[tuple[int, bool, str]] = []
    assert schedule_due(runtime, lambda *job: queued.append(job)) == [repository_id]
    for job_id, full, trigger in queued:  # what the queue consumer runs
        run_sync(runtime, job_id, full=full, trigger=trigger)
    assert sorted(pulls(runtime, repository_id)) == [1]
    assert skipped(runtime, repository_id) == {}
    assert error_of(runtime, repository_id) == (None, None)


def test_webhook_work_spends_the_reserve_down_to_zero_then_waits(runtime: Runtime, github: GitHubWorld) -> None:
    stub = github.stub
    account_id, repository_id = link(runtime, github)
    sync(runtime, repository_id, full=True)
    for i in range(1, 6):
        stub.add_pull("octo", "api", title=f"API-{i}", head=f"b{i}", created_at=DAY_AGO + timedelta(minutes=i))
    reset = int(time.time()) + 700
    stub.set_rate_limit(4, limit=5000, reset=reset)
    discover(runtime, account_id)  # spends 1 or more; devlink now knows the budget is below the reserve
    left = remaining(github)
    assert 0 < left < 4
    sync(runtime, repository_id, trigger="hook")
    assert remaining(github) == 0
    assert_deferred(runtime, repository_id, datetime.fromtimestamp(reset, UTC), "rate limit reached")
    assert account(runtime, account_id).rate_remaining == 0
    # spent: even webhook work waits now, without asking the host
    mark = len(stub.requests)
    sync(runtime, repository_id, trigger="hook")
    assert pull_calls(github, mark) == []
    assert_deferred(runtime, repository_id, datetime.fromtimestamp(reset, UTC), "budget")


LIMITS = [
    (403, {"X-RateLimit-Remaining": "0"}, 600),  # primary limit: wait until X-RateLimit-Reset (600 s ahead)
    (403, {"Retry-After": "120"}, 120),  # secondary limit
    (429, {"Retry-After": "90"}, 90),
]


@pytest.mark.parametrize(("status", "headers", "wait"), LIMITS)
def test_a_limit_reached_answer_defers_pull_requests(
    runtime: Runtime, github: GitHubWorld, status: int, headers: dict[str, str], wait: int
) -> None:
    _account_id, repository_id = link(runtime, github)
    github.stub.add_pull("octo", "api", title="API-1", head="b")
    reset = int(time.time()) + 600
    github.stub.fail_next("GET", "/pulls", status, headers={**headers, "X-RateLimit-Reset": str(reset)})
    sync(runtime, repository_id)
    assert_deferred(runtime, repository_id, datetime.now(UTC) + timedelta(seconds=wait), "")
    assert pulls(runtime, repository_id) == {}


def test_ghes_without_rate_limits_syncs_and_never_pauses(runtime: Runtime, github: GitHubWorld) -> None:
    github.stub.rate_limits = False
    account_id, repository_id = link(runtime, github)
    github.stub.add_pull("octo", "api", title="API-1", head="b")
    sync(runtime, repository_id, full=True, trigger="schedule")
    assert error_of(runtime, repository_id) == (None, None)
    assert sorted(pulls(runtime, repository_id)) == [1]
    row = account(runtime, account_id)
    assert (row.rate_limit, row.rate_remaining, row.rate_reset_at) == (None, None, None)
    github.stub.update_pull("octo", "api", 1, title="API-2")
    sync(runtime, repository_id, trigger="schedule")
    assert pulls(runtime, repository_id)[1].title == "API-2"


# -- failures per repository ---------------------------------------------------------


def test_revoked_credential_is_auth(runtime: Runtime, github: GitHubWorld) -> None:
    _account_id, repository_id = link(runtime, github)
    github.stub.fail_next("GET", "/pulls", 401)
    sync(runtime, repository_id)
    reason, message = error_of(runtime, repository_id)
    assert reason == "auth" and "refused the credential" in (message or "")
    assert github.stub.web_url.split("//")[1] in (message or "")
    assert TOKEN not in (message or "")


def test_pull_requests_the_credential_may_not_read_are_skipped_and_commits_still_sync(
    runtime: Runtime, github: GitHubWorld
) -> None:
    _account_id, repository_id = link(runtime, github)
    sync(runtime, repository_id, full=True)
    github.stub.add_pull("octo", "api", title="API-1", head="b")
    sha = github.work["octo/api"].commit("API-1 work")
    github.work["octo/api"].git("push", "-q", "origin", "main")
    github.stub.fail_next("GET", "/pulls", 403)  # e.g. a fine-grained token without "Pull requests: read"
    [result] = run_sync(runtime, repository_id, full=False)
    assert result.commits_new == 1 and result.pull_requests == 0
    assert error_of(runtime, repository_id) == (None, None)
    assert pulls(runtime, repository_id) == {}
    with runtime.sessions() as session:
        assert [c["sha"] for c in development(session, "API-1")["commits"]] == [sha]
    # skipped, and visible: on the repository (API, CLI, account page) until pull requests sync again
    note = skipped(runtime, repository_id)["pull_requests"]
    assert note["reason"] == "permission" and "forbidden" in note["message"] and note["at"]
    assert result.entity_errors == {"pull_requests": note}
    sync(runtime, repository_id)
    assert sorted(pulls(runtime, repository_id)) == [1]
    assert skipped(runtime, repository_id) == {}


@pytest.mark.parametrize("status", [404, 410])
def test_deleted_repository_is_marked_gone(runtime: Runtime, github: GitHubWorld, status: int) -> None:
    _account_id, repository_id = link(runtime, github)
    github.stub.add_pull("octo", "api", title="API-1", head="b")
    sync(runtime, repository_id, full=True)
    github.stub.delete_repo("octo", "api", status=status)
    sync(runtime, repository_id)
    row = repository(runtime, repository_id)
    assert row.state == "gone"
    assert row.last_error_reason == "gone" and "marked gone" in (row.last_error_message or "")
    assert sorted(pulls(runtime, repository_id)) == [1]  # what was stored stays readable


def test_server_errors_are_retried_with_back_off_then_recorded(runtime: Runtime, github: GitHubWorld) -> None:
    stub = github.stub
    _account_id, repository_id = link(runtime, github)
    stub.add_pull("octo", "api", title="API-1", head="b")
    stub.fail_next("GET", "/pulls", 502, times=2)
    mark = len(stub.requests)
    sync(runtime, repository_id)
    assert error_of(runtime, repository_id) == (None, None)
    assert len([r for r in pull_calls(github, mark) if r.path.endswith("/pulls")]) == 3  # two retries, then 200
    assert sorted(pulls(runtime, repository_id)) == [1]

    stub.add_pull("octo", "api", title="API-2", head="c")
    stub.fail_next("GET", "/pulls", 503, times=100)
    mark = len(stub.requests)
    sync(runtime, repository_id)
    reason, message = error_of(runtime, repository_id)
    assert reason == "server" and "503" in (message or "")
    assert len(pull_calls(github, mark)) == 3


def test_a_host_that_does_not_answer_is_a_network_error(
    runtime: Runtime, github: GitHubWorld, tmp_path: Path
) -> None:
    import socket

    _account_id, repository_id = link(runtime, github)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        configure_host(runtime, AccountOptions(name="", web_url=github.stub.web_url,
                                               api_url=f"http://127.0.0.1:{port}/api/v3", timeout=0.3))
        sync(runtime, repository_id)
    reason, message = error_of(runtime, repository_id)
    assert reason == "network", message
    assert "did not answer within 0.3 s" in (message or "")
    assert repository(runtime, repository_id).commits_indexed == 1  # git still synced


@pytest.mark.parametrize("cause", ["reserve", "primary", "secondary", "429", "server"])
def test_next_sync_follows_the_wait_the_host_gave(runtime: Runtime, github: GitHubWorld, cause: str) -> None:
    stub = github.stub
    account_id, repository_id = link(runtime, github)
    stub.add_pull("octo", "api", title="API-1", head="b")
    reset = int(time.time()) + 600
    if cause == "reserve":
        stub.set_rate_limit(100, limit=5000, reset=reset)
        discover(runtime, account_id)
        expected = datetime.fromtimestamp(reset, UTC)
    elif cause == "server":
        stub.fail_next("GET", "/pulls", 500, times=100)
        expected = datetime.now(UTC) + timedelta(seconds=60)
    else:
        status, headers, wait = LIMITS[["primary", "secondary", "429"].index(cause)]
        stub.fail_next("GET", "/pulls", status, headers={**headers, "X-RateLimit-Reset": str(reset)})
        expected = datetime.now(UTC) + timedelta(seconds=wait)
    sync(runtime, repository_id, trigger="schedule")
    if cause == "server":  # an outage fails the sync and is retried a minute later
        assert error_of(runtime, repository_id)[0] == "server"
        assert repository(runtime, repository_id).sync_state == "failed"
    else:  # the API budget defers pull requests: no failure
        assert_deferred(runtime, repository_id, expected, "")
    assert_near(repository(runtime, repository_id).next_sync_at, expected)


def test_workers_storing_the_same_etag_at_once_never_fail(runtime: Runtime, github: GitHubWorld) -> None:
    """The ETag cache is shared by every worker: two that fetch one account-wide page together both store it."""
    import threading

    from devlink.sync.host_clients import DbConditionalCache

    account_id, _repository_id = link(runtime, github)
    errors: list[str] = []
    barrier = threading.Barrier(6)

    def worker(n: int) -> None:
        cache = DbConditionalCache(runtime, account_id)
        for k in range(25):
            barrier.wait()
            try:
                cache.put(f"/installation/repositories?page={k}", f'W/"{n}"', f"[{n}]")
            except Exception as exc:  # what a sync would record as an internal error
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    cache = DbConditionalCache(runtime, account_id)
    for k in range(25):
        stored = cache.get(f"/installation/repositories?page={k}")
        assert stored is not None and stored[1] == f"[{stored[0][3]}]"  # one writer's etag with its own body
