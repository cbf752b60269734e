"""Repository locations: URLs versus paths, and credentials kept out of what is shown or stored."""

import pytest

from devlink.domain.remotes import Remote, parse_remote, redact, redact_text, with_userinfo


@pytest.mark.parametrize(
    ("text", "remote"),
    [
        pytest.param(
            "https://user:token@git.example.com/org/x.git",
            Remote("https://git.example.com/org/x.git", "user:token", True),
            id="https-user-token",
        ),
        pytest.param(
            "https://x-access-token:ghp_abc123@github.com/org/x.git",
            Remote("https://github.com/org/x.git", "x-access-token:ghp_abc123", True),
            id="https-access-token",
        ),
        pytest.param(
            "http://robot:s3cr3t@127.0.0.1:8080/x.git",
            Remote("http://127.0.0.1:8080/x.git", "robot:s3cr3t", True),
            id="http-port-kept",
        ),
        pytest.param(
            "https://token@git.example.com/x.git",
            Remote("https://git.example.com/x.git", "token", True),
            id="user-only",
        ),
        pytest.param(
            "https://user:p@ss@git.example.com/x.git",
            Remote("https://git.example.com/x.git", "user:p@ss", True),
            id="at-sign-in-password",
        ),
        pytest.param(
            "https://u:p@[::1]:8443/x.git?ref=1#top",
            Remote("https://[::1]:8443/x.git?ref=1#top", "u:p", True),
            id="ipv6-query-fragment",
        ),
        pytest.param(
            "https://git.example.com/org/x.git",
            Remote("https://git.example.com/org/x.git", "", True),
            id="https-no-credentials",
        ),
        pytest.param(
            "ssh://git@git.example.com:2222/org/x.git",
            Remote("ssh://git.example.com:2222/org/x.git", "git", True),
            id="ssh-url",
        ),
        pytest.param("git://git.example.com/x.git", Remote("git://git.example.com/x.git", "", True), id="git-url"),
        pytest.param("file:///srv/git/x.git", Remote("file:///srv/git/x.git", "", True), id="file-url"),
        pytest.param(
            "HTTPS://git.example.com/x.git", Remote("https://git.example.com/x.git", "", True), id="scheme-case"
        ),
        pytest.param("git@github.com:org/x.git", Remote("git@github.com:org/x.git", "", True), id="scp-like"),
        pytest.param("github.com:org/x.git", Remote("github.com:org/x.git", "", True), id="scp-like-no-user"),
        pytest.param(
            "  https://git.example.com/x.git \n",
            Remote("https://git.example.com/x.git", "", True),
            id="surrounding-whitespace-trimmed",
        ),
        pytest.param("/srv/git/x.git", Remote("/srv/git/x.git", "", False), id="absolute-path"),
        pytest.param("./x", Remote("./x", "", False), id="relative-path"),
        pytest.param("x.git", Remote("x.git", "", False), id="bare-name"),
        pytest.param("~/src/x", Remote("~/src/x", "", False), id="home-path"),
        pytest.param("/tmp/a:b/x", Remote("/tmp/a:b/x", "", False), id="path-with-colon"),
        pytest.param("C:\\src\\x", Remote("C:\\src\\x", "", False), id="windows-path"),
    ],
)
def test_parse_remote(text: str, remote: Remote) -> None:
    assert parse_remote(text) == remote


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("   \t ", id="blank"),
        pytest.param("ftp://git.example.com/x.git", id="ftp-scheme"),
        pytest.param("javascript://x/y", id="odd-scheme"),
        pytest.param("https:///x.git", id="no-host"),
        pytest.param("ssh://", id="ssh-nothing"),
        pytest.param("https://git.example.com/x.git\nhttps://evil.example/y", id="inner-newline"),
        pytest.param("https://git.example.com/x\r.git", id="carriage-return"),
        pytest.param("/srv/git/x\nrm", id="path-newline"),
        pytest.param("/srv/git/x\x00.git", id="nul"),
    ],
)
def test_parse_remote_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_remote(text)


def test_parse_remote_names_the_bad_scheme() -> None:
    with pytest.raises(ValueError, match="unsupported URL scheme 'ftp'"):
        parse_remote("ftp://git.example.com/x.git")


@pytest.mark.parametrize(
    "url",
    [
        "https://user:token@git.example.com/org/x.git",
        "http://robot:s3cr3t@127.0.0.1:8080/x.git",
        "ssh://git@git.example.com:2222/org/x.git",
        "https://u:p@[::1]:8443/x.git?ref=1#top",
        "https://git.example.com/org/x.git",
    ],
)
def test_with_userinfo_restores_the_url(url: str) -> None:
    remote = parse_remote(url)
    assert with_userinfo(remote.location, remote.userinfo) == url


def test_with_userinfo_without_credentials_is_the_location() -> None:
    assert with_userinfo("https://git.example.com/x.git", "") == "https://git.example.com/x.git"
    assert with_userinfo("/srv/git/x.git", "") == "/srv/git/x.git"


@pytest.mark.parametrize(
    ("location", "redacted"),
    [
        pytest.param("https://user:token@git.example.com/x.git", "https://git.example.com/x.git", id="user-token"),
        pytest.param("https://token@git.example.com/x.git", "https://git.example.com/x.git", id="token"),
        pytest.param("ssh://git@git.example.com/x.git", "ssh://git.example.com/x.git", id="ssh"),
        pytest.param("https://git.example.com/x.git", "https://git.example.com/x.git", id="clean-url"),
        pytest.param("https://git.example.com/a@b/x.git", "https://git.example.com/a@b/x.git", id="at-in-path"),
        pytest.param("git@github.com:org/x.git", "git@github.com:org/x.git", id="scp-like"),
        pytest.param("/srv/git/x.git", "/srv/git/x.git", id="path"),
        # The same split as parse_remote: the userinfo ends at the last '@' of the authority,
        # so no part of a password holding '@' is left in the text.
        pytest.param("https://user:p@ss@git.example.com/x.git", "https://git.example.com/x.git", id="at-in-password"),
    ],
)
def test_redact(location: str, redacted: str) -> None:
    assert redact(location) == redacted


def test_redact_text_removes_every_userinfo_from_a_git_error() -> None:
    stderr = (
        "Cloning into bare repository 'mirror.git'...\n"
        "fatal: unable to access 'https://robot:s3cr3t@127.0.0.1:9/x.git/': Failed to connect to 127.0.0.1 port 9\n"
        "hint: tried http://robot:s3cr3t@127.0.0.1:9/x.git and ssh://deploy@git.example.com/x.git"
    )
    assert redact_text(stderr) == (
        "Cloning into bare repository 'mirror.git'...\n"
        "fatal: unable to access 'https://127.0.0.1:9/x.git/': Failed to connect to 127.0.0.1 port 9\n"
        "hint: tried http://127.0.0.1:9/x.git and ssh://git.example.com/x.git"
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("fatal: repository '/srv/git/x.git' does not exist", id="path"),
        pytest.param("Author: Ada <ada@example.com>", id="email"),
        pytest.param("see https://git.example.com/x.git for details", id="clean-url"),
        pytest.param("fetch git@github.com:org/x.git failed", id="scp-like"),
    ],
)
def test_redact_text_leaves_text_without_credentials_alone(text: str) -> None:
    assert redact_text(text) == text
