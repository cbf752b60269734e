"""Repository locations: tell a URL from a path, and keep credentials out of sight.

A remote such as ``https://user:token@git.example.com/x.git`` carries a secret.
devlink stores the location without it (``redact``) and the secret apart,
encrypted; the two are joined in memory only when git needs them (``with_userinfo``).
"""

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

__all__ = ["Remote", "parse_remote", "redact", "redact_text", "with_userinfo"]

_SCHEMES = ("http", "https", "git", "ssh", "file")
# scp-like syntax: user@host:path (no scheme, a colon before the first slash)
_SCP_LIKE = re.compile(r"^(?:[A-Za-z0-9._~-]+@)?[A-Za-z0-9.-]+:(?!//)[^\\]")
# the userinfo ends at the last "@" of the authority, which ends at "/", "?", "#" or white space
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


@dataclass(frozen=True)
class Remote:
    """A parsed repository location.

    ``location`` is safe to show; ``userinfo`` is the secret part (or "") that
    was removed from it.  ``is_url`` is False for a local path.
    """

    location: str
    userinfo: str
    is_url: bool


def parse_remote(text: str) -> Remote:
    """Split ``text`` into a shareable location and its credentials.

    Raises ValueError with a message fit for a user when ``text`` is neither a
    URL of a known scheme nor something that could be a path.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty repository location")
    if any(ch in text for ch in "\n\r\0"):
        raise ValueError("a repository location cannot contain line breaks or NUL bytes")
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() not in _SCHEMES:
            raise ValueError(
                f"unsupported URL scheme {parts.scheme!r}: use one of {', '.join(_SCHEMES)}, or a local path"
            )
        if parts.scheme.lower() != "file" and not parts.hostname:
            raise ValueError("the URL has no host name")
        userinfo = ""
        if "@" in parts.netloc:
            userinfo, _, _ = parts.netloc.rpartition("@")
        return Remote(location=_strip_userinfo(parts), userinfo=userinfo, is_url=True)
    if _SCP_LIKE.match(text):
        return Remote(location=text, userinfo="", is_url=True)
    return Remote(location=text, userinfo="", is_url=False)


def _strip_userinfo(parts: SplitResult) -> str:
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def with_userinfo(location: str, userinfo: str) -> str:
    """Put credentials back into a URL, in memory, for the one git call that needs them."""
    if not userinfo:
        return location
    parts = urlsplit(location)
    return urlunsplit((parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query, parts.fragment))


def redact(location: str) -> str:
    """A location with any ``user:password@`` removed; paths come back unchanged."""
    return redact_text(location)


def redact_text(text: str) -> str:
    """Remove every URL userinfo from free text, such as a git error message."""
    return _USERINFO_IN_TEXT.sub(lambda m: m.group("scheme"), text)
