"""Bounds on JSON from strangers, checked before ``json.loads`` builds anything from it.

``json.loads`` recurses once per nesting level and allocates a Python object per
value, so a hostile body can exhaust the stack (a 500 with a traceback) or, when
wide, memory.  The size is bounded by whoever reads the body; this module bounds
the depth, in a few passes that each run at C speed over the bytes:

1. drop escaped backslashes, then escaped quotes (``bytes.replace``), so every quote
   left opens or closes a string;
2. keep only brackets and quotes (``bytes.translate``), drop the strings with no
   bracket in them (``bytes.replace`` of ``""``: removing two adjacent quotes keeps
   every other quote's parity), then the rest of the strings (one regex pass):
   brackets inside strings do not nest;
3. fold ``{``/``}`` into ``[``/``]``, and delete every innermost ``[]`` pair
   (``bytes.replace``), once per level, until nothing is left, or the limit is
   passed, or a pass removes nothing (unbalanced).

For valid JSON the number of passes is exactly the nesting depth; for invalid JSON
the count may be off, but then ``json.loads`` refuses the body anyway.
"""

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "JsonLimitError", "json_depth", "loads_bounded"]

#: Deeper than any payload a code host sends (GitHub's nest about 6 levels).
MAX_DEPTH = 64

_STRING = re.compile(rb'"[^"]*"')  # once escapes are gone, and only brackets are left in it
_FOLD = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')


class JsonLimitError(ValueError):
    """The body is not JSON this process will parse; ``str()`` says why, for the answer to the sender.

    ``reason`` is ``bad_json`` (not UTF-8, not JSON) or ``too_deep``.
    """

    def __init__(self, message: str, reason: str = "bad_json") -> None:
        super().__init__(message)
        self.reason = reason


def json_depth(body: bytes, limit: int = MAX_DEPTH) -> int | None:
    """The nesting depth of ``body`` (0 for a scalar), or None once it is known to exceed ``limit``.

    Unbalanced brackets (not JSON) give the depth of what balanced; the parser refuses the rest.
    """
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = unescaped.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    brackets = _STRING.sub(b"", structure).translate(_FOLD)
    too_deep = b"[" * (limit + 1)  # a run of opening brackets longer than the limit: no need to peel it
    depth = 0
    while brackets:
        if depth >= limit or too_deep in brackets:
            return None
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            break
        brackets = peeled
        depth += 1
    return depth


def loads_bounded(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` of UTF-8 ``body``, refusing (``JsonLimitError``) non-UTF-8, non-JSON and too-deep input.

    UTF-8 only: ``json.loads(bytes)`` would also take UTF-16/32, which no code host sends.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonLimitError(f"body is not UTF-8: {exc}") from None
    if json_depth(body, max_depth) is None:
        raise JsonLimitError(f"body is JSON nested deeper than {max_depth} levels", "too_deep")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonLimitError(f"body is not JSON: {exc}") from None
    except ValueError as exc:  # an integer past Python's digit limit (4,300): JSON, but not one this process takes
        raise JsonLimitError(f"body is JSON this process will not parse: {exc}") from None
    except RecursionError:  # the depth check should make this unreachable; never a 500 if it is not
        raise JsonLimitError(f"body is JSON nested deeper than {max_depth} levels", "too_deep") from None
