"""Who holds a sync lock, and whether that process is still alive.

A holder is written as ``<hostname>/<pid>/<start>/<scope>``:

* ``start`` is the process's start time in clock ticks since boot (field 22
  of ``/proc/<pid>/stat``), so a pid reused by a later process does not look
  like the holder;
* ``scope`` names the space in which a pid means something: the kernel's
  boot id and the pid namespace.  Two containers that share a hostname but not
  a pid namespace (``--network host``), or the same machine after a reboot,
  have different scopes and cannot judge each other's pids.

Where ``/proc`` is missing, ``start`` and ``scope`` are random tokens of this
process: nobody else can judge such a holder, and its lock falls back to the
heartbeat, as a holder on another machine does.

``dead_here(holder)`` is True only when the holder is in this process's
scope and its process is certainly gone (no such pid, another start time, or
a zombie).  Anything else, including text that does not parse, is "cannot
tell": the caller then trusts the heartbeat.
"""

import hashlib
import os
import secrets
import socket
from functools import cache
from pathlib import Path

__all__ = ["dead_here", "identity_of", "this_process"]

PROC = Path("/proc")
MAX_HOSTNAME = 120  # the column holds 200 characters; a kernel hostname has at most 64


@cache
def _hostname() -> str:
    name = socket.gethostname() or "localhost"
    return name.replace("/", "_")[:MAX_HOSTNAME]


@cache
def _scope() -> str:
    """The boot id and pid namespace of this process, or a random token without ``/proc``."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(PROC / "self/ns/pid")
    except OSError:
        return "r" + secrets.token_hex(6)
    return hashlib.sha256(f"{boot} {namespace}".encode()).hexdigest()[:12]


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from ``/proc/<pid>/stat``, or None when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name in parentheses may hold spaces and ")"
    return fields[0], fields[19]  # field 3 (state) and field 22 (starttime), counted from 1


def _no_such_pid(pid: int) -> bool:
    """Confirm with the kernel that a pid missing from ``/proc`` is gone (``hidepid`` hides other users' pids)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process, or a number no pid can be
        return True
    except PermissionError:  # it exists, as another user's process whose start time we cannot read
        return False
    return False


def identity_of(pid: int) -> str | None:
    """The holder string of a process of this machine, or None when it is not running (or /proc is missing)."""
    try:
        stat = _stat(pid)
    except OSError:
        return None
    if stat is None or _scope().startswith("r"):
        return None
    return f"{_hostname()}/{pid}/{stat[1]}/{_scope()}"


@cache
def _random_start(pid: int) -> str:
    return "r" + secrets.token_hex(6)


def this_process() -> str:
    """This process's holder string (computed per pid, so a forked child gets its own)."""
    pid = os.getpid()
    return identity_of(pid) or f"{_hostname()}/{pid}/{_random_start(pid)}/{_scope()}"


def dead_here(holder: str | None) -> bool:
    """True when ``holder`` is a process of this machine's scope that is gone; False when alive or unknown."""
    parts = (holder or "").rsplit("/", 3)
    if len(parts) != 4:
        return False
    host, pid_text, start, scope = parts
    if host != _hostname() or scope != _scope() or scope.startswith("r") or not pid_text.isdigit():
        return False
    try:
        stat = _stat(int(pid_text))
    except (OSError, ValueError, IndexError):
        return False
    if stat is None:
        return _no_such_pid(int(pid_text))
    state, started = stat
    return started != start or state in ("Z", "X", "x")
