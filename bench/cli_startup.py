"""Start-up time of the ``devlink`` command: the commands a user types most, timed as whole processes.

Each command runs ``--runs`` times (after one warm-up run) as a fresh
``python -m devlink`` process on a fresh data directory whose database is
already migrated, so what is timed is what every invocation pays: the
interpreter, the imports, opening (and checking) the database, the command.
``python -c pass`` is the interpreter's own floor and ``import devlink.cli``
the cost of the module alone.

    python bench/cli_startup.py [--runs 10] [--src DIR]

``--src`` is put first on ``PYTHONPATH`` (default: this checkout's ``src``), so
two checkouts can be compared with the same script.  Prints one line per
command: wall and CPU (user + system) seconds, min and median.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", ["-c", "pass"]),
    ("import devlink.cli", ["-c", "import devlink.cli"]),
    ("devlink --help", ["-m", "devlink", "--help"]),
    ("devlink keys TEXT", ["-m", "devlink", "keys", "fix ABC-1 and DEF-2"]),
    ("devlink issue KEY --json", ["-m", "devlink", "issue", "ABC-1", "--json"]),
]


def run_once(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process, from the kernel's accounting of that child."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read() if process.stderr else b""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {process.returncode}: {stderr.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command (after one warm-up)")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the devlink source tree to time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="devlink-startup-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLINK_")}
        env.update(DEVLINK_HOME=home, PYTHONPATH=str(args.src.resolve()))
        run_once(["-m", "devlink", "migrate"], env)  # the database exists and is current, as for any later command
        report(args.runs, args.src.resolve(), env)
    return 0


def report(runs: int, src: Path, env: dict[str, str]) -> None:

    print(f"devlink start-up, {src}, {runs} runs each (seconds)")
    print(f"{'command':<26} {'wall min':>9} {'wall med':>9} {'cpu min':>9} {'cpu med':>9}")
    for label, command in COMMANDS:
        run_once(command, env)  # warm-up: page cache, .pyc files
        walls, cpus = zip(*(run_once(command, env) for _ in range(runs)), strict=True)
        print(f"{label:<26} {min(walls):9.3f} {statistics.median(walls):9.3f} "
              f"{min(cpus):9.3f} {statistics.median(cpus):9.3f}")


if __name__ == "__main__":
    sys.exit(main())
