"""The ``post-receive`` hook that tells devlink about every push to a plain git server.

``devlink repo hook`` prints or installs it, ``devlink demo`` installs it; both
go through here.  The script holds no secret: it reads the repository's token
from ``devlink-token`` beside it (a header line, mode 0600), which curl sends
with ``-H @file``, so the token is in no command line while the hook runs.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from devlink.errors import InvalidInput, NotFound
from devlink.runtime import Runtime
from devlink.store.models import Repository
from devlink.sync.repositories import hook_token

__all__ = ["HOOK_SCRIPT", "TOKEN_FILE", "Hook", "hook_script", "hooks_directory", "install_hook", "write_token_file"]

TOKEN_FILE = "devlink-token"

HOOK_SCRIPT = """#!/bin/sh
# devlink post-receive hook for {name}: asks devlink for a soft sync after every push.
# Installed by `devlink repo hook`; the token (for this repository only) is read from
# devlink-token beside this script, so it is never on a command line.
body=$(cat)
url='{url}/hooks/git'
token_file="$(dirname "$0")/devlink-token"
if ! [ -r "$token_file" ]; then
  echo "devlink: $token_file is missing: run devlink repo hook --install" >&2
  exit 0
fi
if command -v curl >/dev/null 2>&1; then
  printf '%s\\n' "$body" | curl -fsS -m 10 -X POST -H "@$token_file" \\
    -H 'Content-Type: text/plain' --data-binary @- "$url" >/dev/null || echo "devlink: notification failed" >&2
else
  printf '%s\\n' "$body" | python3 -c 'import sys, urllib.request as u
token = open(sys.argv[2]).read().partition(":")[2].strip()
req = u.Request(sys.argv[1], data=sys.stdin.buffer.read(), method="POST",
                headers={{"X-Devlink-Token": token, "Content-Type": "text/plain"}})
u.urlopen(req, timeout=10)' "$url" "$token_file" || echo "devlink: notification failed" >&2
fi
exit 0
"""

# devlink's address goes into the script between single quotes: only characters that need no quoting
_URL_CHARACTERS = re.compile(r"^[A-Za-z0-9._~:/%\[\]-]+$")


@dataclass(frozen=True)
class Hook:
    """The hook of one repository: ``script`` (no secret in it) and the token file's content."""

    script: str
    token_line: str = field(repr=False)


def check_devlink_url(url: str) -> str:
    """devlink's own ``http(s)://`` address for the hook, without a trailing slash; InvalidInput otherwise."""
    parts = urlsplit(url.strip()) if _URL_CHARACTERS.match(url.strip()) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc \
            or parts.query or parts.fragment:
        raise InvalidInput("--url must be devlink's address as an http:// or https:// URL without credentials",
                           reason="bad_url", hint="for example --url http://127.0.0.1:8000")
    return url.strip().rstrip("/")


def hook_script(rt: Runtime, repository_id: int, url: str) -> Hook:
    """The hook for one repository, posting to devlink at ``url`` (as the git server sees it)."""
    base = check_devlink_url(url)
    with rt.sessions() as session:
        repository = session.get(Repository, repository_id)
        if repository is None:
            raise NotFound(f"no repository {repository_id}")
        token = hook_token(rt, repository)
        return Hook(HOOK_SCRIPT.format(name=repository.name, url=base), f"X-Devlink-Token: {token}\n")


def write_token_file(target: Path, hook: Hook) -> Path:
    """Write the hook's token file at ``target``, readable by its owner only (also when it existed before)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, hook.token_line.encode())
    finally:
        os.close(fd)
    return target


def hooks_directory(path: Path) -> Path:
    """Where git looks for the hooks of the repository at ``path``: ``hooks`` of a bare one, else ``.git/hooks``."""
    root = path.expanduser().resolve()
    return root / "hooks" if (root / "hooks").is_dir() else root / ".git" / "hooks"


def install_hook(path: Path, hook: Hook) -> Path:
    """Write the post-receive hook and its token file into the repository at ``path``; never over someone else's."""
    hooks = hooks_directory(path)
    if not hooks.is_dir():
        raise InvalidInput(f"{path} has no hooks directory", hint="pass the path of the bare repository")
    target = hooks / "post-receive"
    if target.exists() and "devlink post-receive hook" not in target.read_text(errors="replace"):
        raise InvalidInput(f"{target} exists and was not written by devlink; merge it by hand",
                           hint=f"print the script with: devlink repo hook {path}")
    write_token_file(hooks / TOKEN_FILE, hook)
    target.write_text(hook.script)
    target.chmod(0o755)  # no secret in it: whoever runs the hook reads the token file, if allowed to
    return target
