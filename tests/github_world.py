"""A GitHub to test against: the stub API plus real bare repositories behind a token-checking git server."""

import subprocess
from pathlib import Path

from github_stub import GitHubGitServer, GitHubStub
from gitrepos import GitRepo

TOKEN = "ghp_" + "a1b2c3d4" * 4 + "abcd"  # the shape of a classic personal access token


class GitHubWorld:
    """``stub`` answers the REST API; each repository made with ``repo`` is a real bare repository served over
    git's smart HTTP on the stub's web origin by ``git_server`` (which accepts the stub's tokens), with a
    working clone to commit and push from."""

    def __init__(self, root: Path, user: str = "octo") -> None:
        self.root = root
        self.stub = GitHubStub()
        (root / "git").mkdir(parents=True, exist_ok=True)
        self.git_server = GitHubGitServer(root / "git", self.stub)
        self.stub.git_backend = self.git_server._app  # git on the web origin, as github.com serves it
        self.user = user
        self.stub.add_user(user)
        self.stub.add_token(TOKEN, user)
        self.work: dict[str, GitRepo] = {}

    def repo(self, owner: str, name: str, *, private: bool = False, archived: bool = False) -> GitRepo:
        """A repository on the host with one commit on ``main``; returns its working clone."""
        bare = self.root / "git" / owner / f"{name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
        work = GitRepo(self.root / "work" / owner / name)
        work.git("remote", "add", "origin", str(bare))
        work.commit(f"initial commit of {name}")
        work.git("push", "-q", "origin", "main")
        self.stub.add_repo(owner, name, private=private, archived=archived,
                           clone_url=f"{self.stub.web_url}/{owner}/{name}.git")
        self.work[f"{owner}/{name}"] = work
        return work

    def close(self) -> None:
        self.git_server.close()
        self.stub.close()
