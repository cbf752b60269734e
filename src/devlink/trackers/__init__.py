"""Issue trackers behind one protocol: ``builtin`` (the embedded default), Jira later."""
