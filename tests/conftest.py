"""Shared fixtures: real git repositories, a runtime on SQLite or PostgreSQL, servers on loopback.

PostgreSQL (127.0.0.1:5432, database ``test``) and Redis (127.0.0.1:6379) are
used for real.  When one is missing, its tests skip on a developer machine and
fail under ``CI=true``: CI must prove the scale-out path, not skip it.
"""

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from devlink.config import load_settings
from devlink.runtime import Runtime
from github_world import GitHubWorld
from gitlab_world import GitLabWorld
from gitrepos import GitHttpServer, GitRepo
from services import POSTGRES_URL, make_env, require_service

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Ada Lovelace",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Lovelace",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}





@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "work")


@pytest.fixture
def bare_remote(tmp_path: Path, git_repo: GitRepo) -> Iterator[tuple[GitRepo, Path]]:
    """A working repository and a bare 'server' repository it pushes to (``push()`` pushes all)."""
    bare = tmp_path / "server.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    git_repo.git("remote", "add", "origin", str(bare))
    yield git_repo, bare


def _postgres_schema() -> Iterator[str]:
    require_service("PostgreSQL", 5432)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store and sync test runs on both engines."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'devlink.db'}"
    else:
        yield from _postgres_schema()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema()


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    rt = Runtime.open(load_settings(make_env(tmp_path / "home", database_url)))
    yield rt
    rt.close()


@pytest.fixture
def git_http(tmp_path: Path) -> Iterator[GitHttpServer]:
    """A smart-HTTP git server on loopback that wants ``robot:s3cr3t-t0ken``."""
    root = tmp_path / "http-root"
    root.mkdir()
    server = GitHttpServer(root, "robot", "s3cr3t-t0ken")
    yield server
    server.close()


@pytest.fixture
def gitlab(tmp_path: Path) -> Iterator[GitLabWorld]:
    """A stub GitLab (API, OAuth and git on loopback, faithful to the corpus) with real git repositories."""
    world = GitLabWorld(tmp_path / "gitlab")
    yield world
    world.close()


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubWorld]:
    """A stub GitHub (API on loopback, faithful to the corpus) with real git repositories behind it."""
    world = GitHubWorld(tmp_path / "github")
    yield world
    world.close()
