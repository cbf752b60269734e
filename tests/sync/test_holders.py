"""Lock holders: an identity per process that survives pid reuse, and who can tell that a holder is gone."""

import os
import socket
import subprocess
import sys
from pathlib import Path

from devlink.sync.holders import dead_here, identity_of, this_process


def start_time(pid: int) -> str:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()[19]  # field 22


def test_a_holder_names_host_pid_and_start_time_of_the_process() -> None:
    host, pid, start, scope = this_process().split("/")
    assert (host, pid, start) == (socket.gethostname(), str(os.getpid()), start_time(os.getpid()))
    assert len(scope) == 12
    assert not dead_here(this_process())


def test_another_process_has_its_own_identity() -> None:
    child = subprocess.run([sys.executable, "-c", "from devlink.sync.holders import this_process as t; print(t())"],
                           capture_output=True, text=True, check=True, env=dict(os.environ))
    other = child.stdout.strip()
    assert other != this_process()
    assert other.split("/")[0] == this_process().split("/")[0]
    assert other.split("/")[3] == this_process().split("/")[3]  # same machine, same pid namespace
    assert dead_here(other)  # that process has ended


def test_a_killed_process_is_dead_whether_or_not_it_was_reaped() -> None:
    child = subprocess.Popen(["sleep", "60"])
    holder = identity_of(child.pid)
    assert holder is not None and not dead_here(holder)
    child.kill()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # a zombie: its /proc entry is still there
    assert dead_here(holder)
    child.wait()
    assert dead_here(holder)
    assert identity_of(child.pid) is None


def test_a_reused_pid_is_not_the_holder() -> None:
    host, pid, start, scope = this_process().split("/")
    assert dead_here(f"{host}/{pid}/{int(start) + 1}/{scope}")  # this pid, but a process started at another time


def test_holders_nobody_here_can_judge_count_as_alive() -> None:
    host, pid, start, scope = this_process().split("/")
    assert not dead_here(f"another-host/{pid}/{int(start) + 1}/{scope}")  # another machine: the heartbeat decides
    assert not dead_here(f"{host}/{pid}/{int(start) + 1}/0123456789ab")  # another pid namespace or boot
    assert not dead_here(f"{host}/{pid}/r0123456789ab/r0123456789ab")  # a process without /proc
    for text in (None, "", "garbage", f"{host}/-1/{start}/{scope}", f"{host}/x/{start}/{scope}", "a/b/c/d/e"):
        assert not dead_here(text)
