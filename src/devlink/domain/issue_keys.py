"""The one issue-key extractor every part of devlink uses.

A key is a project key (an upper-case ASCII letter, then one or more upper-case
ASCII letters or digits), ``-`` and a number: ``ABC-123``, ``A1BC-9``.  It must
stand alone: the character before and after it is the edge of the text, ASCII
white space or ASCII punctuation.  Anything else, including non-ASCII spaces and
dashes, glues the key to its neighbour, so ``key0MES-123`` and ``ABC-12é`` carry
no key.  The rules are written out in docs/issue-keys.md.

    >>> extract_keys("feature/ABC-12-do-thing fixes ABC-12, DEF-3")
    ('ABC-12', 'DEF-3')
"""

import re
import string

__all__ = [
    "KEY_PATTERN",
    "MAX_KEY_LENGTH",
    "MAX_PROJECT_KEY_LENGTH",
    "SEPARATORS",
    "extract_keys",
    "is_key",
    "project_key",
    "project_key_error",
]

#: The longest key devlink stores or acts on; a longer one (a 200-digit number) names no issue anywhere.
MAX_KEY_LENGTH = 100

#: The longest project key a tracker project may have: Jira's default maximum.  ``KEY-<number>`` then fits
#: in ``MAX_KEY_LENGTH`` for every number of up to 89 digits, so every issue of a project can be linked.
MAX_PROJECT_KEY_LENGTH = 10

_WHITESPACE = " \t\n\r\v\f"
SEPARATORS = frozenset(_WHITESPACE + string.punctuation)

#: What a key looks like, ignoring its neighbours.
KEY_PATTERN = re.compile(r"[A-Z][A-Z0-9]+-[0-9]+")


_UPPER = frozenset(string.ascii_uppercase)
_PROJECT_CHARS = string.ascii_uppercase + string.digits
#: Splits text around every ``-`` + digits: [text, "-12", text, "-3", text, ...].
_NUMBER_SPLIT = re.compile(r"(-[0-9]+)")


def extract_keys(text: str) -> tuple[str, ...]:
    """Return the distinct keys of ``text`` in order of first appearance.

    A tuple rather than a set so that every caller prints keys in the same,
    reproducible order; duplicates collapse as the rules require.

    Found from the number end, nearly three times faster than scanning for
    the project key: the text is split around each ``-`` + digits (a literal
    first character, which the regex engine skips to quickly), then each number
    must be followed by a separator or the end, and preceded by a project key
    that fills the whole run of non-separators before the ``-``.  Keys cannot
    overlap (a key holds exactly one separator, its ``-``), so these pieces
    are all of them.
    """
    parts = _NUMBER_SPLIT.split(text)
    last = len(parts) - 1
    if not last:
        return ()
    found: dict[str, None] = {}
    for index in range(1, last, 2):
        after = parts[index + 1]
        if after and after[0] not in SEPARATORS:  # "ABC-12x"; an empty piece means "-" or the end follows
            continue
        before = parts[index - 1]
        rest = before.rstrip(_PROJECT_CHARS)
        if rest:
            if rest[-1] not in SEPARATORS:  # "xABC-12"
                continue
        elif index != 1:  # the piece is all project characters, glued to the number before it: "A-1BC-2"
            continue
        project = before[len(rest) :]
        if len(project) > 1 and project[0] in _UPPER:
            found[project + parts[index]] = None
    return tuple(found)


def is_key(text: str) -> bool:
    """Tell whether ``text`` is exactly one issue key (used to validate API paths)."""
    return KEY_PATTERN.fullmatch(text) is not None


def project_key_error(text: str) -> str | None:
    """Why ``text`` cannot be a project key, or None when it can (``ABC``; not ``abc``, ``A``, ``ABCDEFGHIJK``).

    The message quotes at most 20 characters of ``text``: it may be anything a request carried.
    """
    shown = repr(text) if len(text) <= 20 else repr(text[:20]) + f"… ({len(text)} characters)"
    if not is_key(f"{text}-1"):
        return f"invalid project key {shown}: an upper-case letter, then one or more upper-case letters or digits"
    if len(text) > MAX_PROJECT_KEY_LENGTH:
        return (f"invalid project key {shown}: at most {MAX_PROJECT_KEY_LENGTH} characters "
                f"(it has {len(text)})")
    return None


def project_key(key: str) -> str:
    """The project part of a key: ``project_key("KAFKA-12") == "KAFKA"``."""
    return key.rpartition("-")[0]
