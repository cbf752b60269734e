"""The sync engine: mirrors → commits, branches and issue links in the store."""
