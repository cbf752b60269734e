"""Reference names and object ids."""

import pytest

from devlink.domain.refs import ZERO_SHA, branch_from_ref, is_zero_sha


@pytest.mark.parametrize(
    ("ref", "branch"),
    [
        pytest.param("refs/heads/main", "main", id="main"),
        pytest.param("refs/heads/feature/ABC-12-do-thing", "feature/ABC-12-do-thing", id="nested"),
        pytest.param("refs/heads/refs/heads/x", "refs/heads/x", id="prefix-only-once"),
        pytest.param("refs/heads/", None, id="no-name"),
        pytest.param("refs/tags/v1.0", None, id="tag"),
        pytest.param("refs/remotes/origin/main", None, id="remote-tracking"),
        pytest.param("refs/pull/1/head", None, id="pull"),
        pytest.param("main", None, id="short-name"),
        pytest.param("HEAD", None, id="head"),
        pytest.param("", None, id="empty"),
        pytest.param("refs/headsx/main", None, id="near-prefix"),
    ],
)
def test_branch_from_ref(ref: str, branch: str | None) -> None:
    assert branch_from_ref(ref) == branch


def test_zero_sha_is_forty_zeros() -> None:
    assert ZERO_SHA == "0000000000000000000000000000000000000000"


@pytest.mark.parametrize(
    ("sha", "zero"),
    [
        pytest.param("0" * 40, True, id="sha1"),
        pytest.param("0" * 64, True, id="sha256"),
        pytest.param("0" * 39, False, id="short"),
        pytest.param("0" * 41, False, id="long"),
        pytest.param("", False, id="empty"),
        pytest.param("0" * 39 + "1", False, id="one-bit"),
        pytest.param("a" * 40, False, id="other-sha"),
        pytest.param("1eb7644349cb07139d6a3c1ad1986979647cac99", False, id="real-sha"),
    ],
)
def test_is_zero_sha(sha: str, zero: bool) -> None:
    assert is_zero_sha(sha) is zero
