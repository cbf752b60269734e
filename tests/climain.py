"""Run ``devlink ARGS`` in the test's own process: ``devlink.cli.main()`` with that argv, its output captured.

Faster than a subprocess (no interpreter start, no imports per call) and the same code path as the
console script: argument parsing, the one ``DevlinkError`` handler in ``main``, the exit status.
Subprocesses stay for what needs a process of its own (start-up imports, a terminal, a server).
"""

import io
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from devlink.cli import main


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


class InProcessCli:
    """``cli("repo", "add", path)`` runs the command against ``home`` and returns its status and output."""

    def __init__(self, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.home = home
        self._monkeypatch = monkeypatch
        self._capsys = capsys
        for name in list(os.environ):
            if name.startswith("DEVLINK_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("DEVLINK_HOME", str(home))

    def __call__(self, *args: str, input: str = "") -> Ran:
        self._capsys.readouterr()  # drop what came before
        with self._monkeypatch.context() as patch:
            patch.setattr("sys.argv", ["devlink", *args])
            patch.setattr("sys.stdin", io.StringIO(input))
            try:
                main()
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        captured = self._capsys.readouterr()
        return Ran(code, captured.out, captured.err)
