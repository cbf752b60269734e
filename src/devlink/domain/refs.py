"""Git reference names and object ids, shared by every host parser."""

__all__ = ["ZERO_SHA", "branch_from_ref", "is_zero_sha"]

ZERO_SHA = "0" * 40
_HEADS = "refs/heads/"


def branch_from_ref(ref: str) -> str | None:
    """``refs/heads/feature/x`` → ``feature/x``; anything that is not a branch → None."""
    if ref.startswith(_HEADS) and len(ref) > len(_HEADS):
        return ref[len(_HEADS) :]
    return None


def is_zero_sha(sha: str) -> bool:
    """Git writes an all-zero id for the "before" of a created or the "after" of a deleted ref."""
    return len(sha) in (40, 64) and set(sha) == {"0"}
