"""Who pushed, and which commits: read out of every push payload of both corpora, compared with the JSON itself.

The expectation is computed from the payload's own fields by the rule each host documents (GitHub:
``sender.login`` else ``pusher.name``, ``pusher.email``, ``commits[].id`` and ``head_commit.id``; GitLab:
``user_username`` (older GitLab releases send none), ``user_email`` unless empty or redacted,
``commits[].id`` and ``checkout_sha``), so a parser that drops or invents a field fails on the payload that shows it.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from devlink.hosts import for_kind
from devlink.hosts.base import MAX_PUSHED_SHAS, Push, Pusher, pushed_shas, usable_email

ROOT = Path(__file__).resolve().parents[3] / "shared" / "corpus"
GITHUB = [e for e in json.loads((ROOT / "github-webhooks" / "manifest.json").read_text())["files"]
          if e["event"] == "push"]
GITLAB = [e for e in json.loads((ROOT / "gitlab-webhooks" / "manifest.json").read_text())
          if (e.get("x_gitlab_event") or "") in ("Push Hook", "Tag Push Hook")]


def test_both_corpora_have_push_payloads() -> None:
    assert len(GITHUB) == 13 and len(GITLAB) == 15


@pytest.mark.parametrize("item", GITHUB, ids=[e["file"] for e in GITHUB])
def test_github_pusher_and_pushed_commits(item: dict[str, Any]) -> None:
    payload = json.loads((ROOT / "github-webhooks" / item["file"]).read_text())
    event = for_kind("github").parse("push", payload)
    assert isinstance(event, Push)
    assert event.pusher == Pusher(login=payload["sender"]["login"], email=payload["pusher"]["email"])
    ids = [c["id"] for c in payload["commits"]] + ([payload["head_commit"]["id"]] if payload["head_commit"] else [])
    assert event.pushed == tuple(dict.fromkeys(ids))


@pytest.mark.parametrize("item", GITLAB, ids=[e["file"] for e in GITLAB])
def test_gitlab_pusher_and_pushed_commits(item: dict[str, Any]) -> None:
    payload = json.loads((ROOT / "gitlab-webhooks" / item["file"]).read_text())
    event = for_kind("gitlab").parse(item["x_gitlab_event"], payload)
    assert isinstance(event, Push)
    login, email = payload.get("user_username"), payload.get("user_email") or None  # older GitLab: no username
    assert event.pusher == (Pusher(login=login, email=email) if login or email else None)
    ids = [c["id"] for c in payload["commits"]] + ([payload["checkout_sha"]] if payload.get("checkout_sha") else [])
    assert event.pushed == tuple(dict.fromkeys(ids))


def test_a_redacted_or_empty_gitlab_email_is_no_email() -> None:
    payload = json.loads((ROOT / "gitlab-webhooks" / "go-gitlab" / "push.json").read_text())
    for hidden in ("", "[REDACTED]", "   ", None):
        event = for_kind("gitlab").parse("Push Hook", {**payload, "user_email": hidden})
        assert isinstance(event, Push) and event.pusher == Pusher(login="jsmith", email=None)


def test_hostile_commit_lists_are_filtered_and_capped() -> None:
    payload = json.loads((ROOT / "github-webhooks" / "go-scm" / "push.json").read_text())
    commit = payload["commits"][0]
    many = [{**commit, "id": f"{n:040x}"} for n in range(1, MAX_PUSHED_SHAS + 500)]
    bad = [{**commit, "id": value} for value in ("not-a-sha", "A" * 39, "0" * 40, "g" * 40, "1" * 41)]
    event = for_kind("github").parse("push", {**payload, "commits": bad + many, "head_commit": None})
    assert isinstance(event, Push)
    assert len(event.pushed) == MAX_PUSHED_SHAS and event.pushed[0] == f"{1:040x}"
    assert pushed_shas(["AB" * 20, "ab" * 20, "c" * 64, 7, None]) == ("ab" * 20, "c" * 64)


def test_usable_email() -> None:
    assert usable_email(" a@b.example ") == "a@b.example"
    assert [usable_email(v) for v in ("", "[REDACTED]", "no-at-sign", "a b@c", 3, None, "x@" + "y" * 400)] == [None] * 7
