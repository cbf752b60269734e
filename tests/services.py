"""The local servers the scale-out tests use for real, and what happens when one is missing.

A module of its own (not conftest.py) so test modules can import it: another
directory's conftest.py would shadow a plain ``from conftest import``.
"""

import os
import socket
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("DEVLINK_TEST_POSTGRES", "postgresql+psycopg://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DEVLINK_TEST_REDIS", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def require_service(name: str, port: int) -> None:
    """Skip (or, under CI=true, fail) when a local server the test needs is not running."""
    if _port_open("127.0.0.1", port):
        return
    message = f"{name} is not running on 127.0.0.1:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI must test the scale-out path")
    pytest.skip(message)


def make_env(home: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """Settings for a runtime of its own on ``home`` (and ``database_url``), as ``load_settings`` reads them."""
    env = {"DEVLINK_HOME": str(home), **extra}
    if database_url:
        env["DEVLINK_DATABASE_URL"] = database_url
    return env
