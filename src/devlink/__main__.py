"""``python -m devlink`` runs the CLI."""

from devlink.cli import main

main()
