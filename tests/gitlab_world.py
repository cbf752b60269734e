"""A GitLab to test against: the stub API plus real bare repositories served by ``git http-backend`` on its origin.

The stub checks git's Basic credentials against its tokens (any user name, the token as password, as GitLab
does), so a clone with the wrong token fails as it would on gitlab.com.
"""

import subprocess
from pathlib import Path

from gitlab_stub import GitLabStub
from gitrepos import GitRepo

TOKEN = "glpat-" + "a1B2c3D4e5" * 2  # the shape of a personal access token


class GitLabWorld:
    """``stub`` answers the REST API and git; ``project`` makes a real bare repository with one commit on
    ``main`` at ``{full_path}.git`` and a working clone to commit and push from."""

    def __init__(self, root: Path, user: str = "ada", *, tls: tuple[Path, Path] | None = None) -> None:
        self.root = root
        self.stub = GitLabStub(tls=tls)
        (root / "git").mkdir(parents=True, exist_ok=True)
        self.stub.serve_git(root / "git")
        self.user = user
        self.stub.add_user(user)
        self.stub.add_token(TOKEN, user)
        self.work: dict[str, GitRepo] = {}

    def group(self, full_path: str, *, member: bool = True) -> None:
        """A group and every missing parent of it; the world's user is a Maintainer of the top one."""
        parts = full_path.split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path.lower() not in self.stub.groups:
                self.stub.add_group(parts[depth - 1], "/".join(parts[:depth - 1]) or None)
        if member:
            self.stub.add_member(parts[0], self.user)

    def project(self, namespace: str, name: str, **options: object) -> GitRepo:
        full_path = f"{namespace}/{name}"
        bare = self.root / "git" / f"{full_path}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
        work = GitRepo(self.root / "work" / full_path)
        work.git("remote", "add", "origin", str(bare))
        work.commit(f"initial commit of {name}")
        work.git("push", "-q", "origin", "main")
        self.stub.add_project(namespace, name, **options)  # type: ignore[arg-type]
        self.work[full_path] = work
        return work

    def close(self) -> None:
        self.stub.close()
