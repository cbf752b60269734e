"""Repository locations: accept only what git reads as a plain repository, and keep credentials out of sight.

A remote such as ``https://user:token@git.example.com/x.git`` carries a secret.
devlink stores the location without it (``redact``) and the secret apart,
encrypted; git gets it later through a credential helper, never in a URL
(``split_userinfo`` turns it back into a user name and a password).

Accepted: ``https``, ``http``, ``ssh`` and ``git`` URLs, scp-style
``[user@]host:path`` and local paths.  Refused: anything git could read as an
option (a leading ``-``), remote-helper forms (``ext::…``, ``fd::…``, any
``<transport>::<address>``), ``file://`` (give the path), other schemes, and
credentials where git would not keep them secret (a password in an ssh or
scp-style location).  No message ever repeats the text it refuses.
"""

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

__all__ = ["SCHEMES", "Remote", "is_http", "parse_remote", "redact", "redact_text", "split_userinfo"]

SCHEMES = ("https", "http", "ssh", "git")
# git's own test for "<transport>::<address>" (transport.c): URL-scheme characters, then "::"
_HELPER_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_USER = re.compile(r"^[A-Za-z0-9._~+-]+$")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$")
# the userinfo ends at the last "@" of the authority, which ends at "/", "?", "#" or white space
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


@dataclass(frozen=True)
class Remote:
    """A parsed repository location.

    ``location`` is safe to show and is what git is given; ``userinfo`` is the
    secret part (or "") that was removed from an HTTP(S) URL.  ``is_url`` is
    False for a local path, which comes back as given (maybe relative).
    """

    location: str
    userinfo: str
    is_url: bool


def parse_remote(text: str) -> Remote:
    """Split ``text`` into a shareable location and its credentials.

    Raises ValueError with a message fit for a user (never holding ``text``,
    which may carry a secret) when ``text`` is not an accepted location.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty repository location")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ValueError("a repository location cannot contain line breaks, tabs or other control characters")
    if text.startswith("-"):
        raise ValueError("a repository location cannot start with '-'")
    if _HELPER_FORM.match(text):
        raise ValueError("'<transport>::<address>' locations (remote helpers such as ext:: or fd::) are not "
                         "accepted: use an https, http, ssh or git URL, user@host:path, or a local path")
    if "://" in text:
        return _parse_url(text)
    if _looks_scp(text):
        return _parse_scp(text)
    if "::" in text:
        raise ValueError("a local path cannot contain '::'")
    return Remote(location=text, userinfo="", is_url=False)


def _parse_url(text: str) -> Remote:
    scheme = text.partition("://")[0].lower()
    if scheme == "file":
        raise ValueError("file:// URLs are not accepted: give the repository's path instead")
    if scheme not in SCHEMES:
        shown = scheme if re.fullmatch(r"[a-z][a-z0-9+.-]{0,20}", scheme) else "?"
        raise ValueError(f"unsupported URL scheme {shown!r}: use one of {', '.join(SCHEMES)}, or a local path")
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"the {scheme} URL has an invalid host or port") from None
    userinfo, _, netloc = parts.netloc.rpartition("@")
    if not host or not _HOST.match(netloc.rpartition(":")[0] if port is not None else netloc):
        raise ValueError(f"the {scheme} URL has no valid host name")
    del port
    if scheme in ("http", "https"):
        return Remote(location=_unsplit(parts, scheme, netloc), userinfo=userinfo, is_url=True)
    if not userinfo:
        return Remote(location=_unsplit(parts, scheme, netloc), userinfo="", is_url=True)
    if scheme == "git":
        raise ValueError("git:// URLs carry no credentials: remove the part before '@'")
    if ":" in userinfo:
        raise ValueError("an ssh URL cannot carry a password: use an SSH key (ssh://user@host/path)")
    if not _USER.match(userinfo) or userinfo.startswith("-"):
        raise ValueError("the ssh URL has an invalid user name")
    # an ssh user name is no secret: it stays in the location git is given
    return Remote(location=_unsplit(parts, scheme, f"{userinfo}@{netloc}"), userinfo="", is_url=True)


def _unsplit(parts: SplitResult, scheme: str, netloc: str) -> str:
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def _scp_colon(text: str) -> int:
    """Where ``[user@]host:path`` splits, by git's rule: the first ``:`` (after a ``[IPv6]`` host), if it comes
    before the first ``/`` and does not start a Windows ``C:\\`` path; -1 for a local path."""
    start = 0
    bracket = text.find("[")
    if bracket >= 0 and bracket == text.find("@") + 1:  # [user@][v6 address]:path
        start = max(text.find("]", bracket), 0)
    colon, slash = text.find(":", start), text.find("/")
    if colon <= 0 or (0 <= slash < colon) or text[colon + 1 : colon + 2] == "\\":
        return -1
    return colon


def _looks_scp(text: str) -> bool:
    return _scp_colon(text) > 0


def _parse_scp(text: str) -> Remote:
    colon = _scp_colon(text)
    head, path = text[:colon], text[colon + 1 :]
    if "@" in path:
        # "user:secret@host:path" reads as host "user" to git, and its path (the secret) would be shown everywhere
        raise ValueError("a user@host:path location cannot have '@' after the ':' (as in user:password@host, "
                         "which it would show): scp-style locations carry no password; use an SSH key, or an "
                         "ssh:// or https:// URL")
    user, _, host = head.rpartition("@")
    if user and (not _USER.match(user) or user.startswith("-")):
        raise ValueError("the user@host:path location has an invalid user name")
    if not _HOST.match(host):
        raise ValueError("the user@host:path location has no valid host name")
    if not path or "::" in path:
        raise ValueError("the user@host:path location has no valid path")
    return Remote(location=text, userinfo="", is_url=True)


def is_http(location: str) -> bool:
    """An ``http://`` or ``https://`` location: the kind whose credentials go through git's credential helper."""
    return location.lower().startswith(("http://", "https://"))


def split_userinfo(userinfo: str) -> tuple[str, str]:
    """``user:password`` → (user, password); a bare token → (token, ""); percent-escapes decoded, as git would."""
    user, sep, password = userinfo.partition(":")
    return unquote(user), unquote(password) if sep else ""


def redact(location: str) -> str:
    """A location with any ``user:password@`` removed; paths come back unchanged."""
    return redact_text(location)


def redact_text(text: str) -> str:
    """Remove every URL userinfo from free text, such as a git error message."""
    return _USERINFO_IN_TEXT.sub(lambda m: m.group("scheme"), text)
