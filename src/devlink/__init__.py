"""devlink: link commits, branches and pull requests to the issue keys they mention."""

__version__ = "0.1.0"
