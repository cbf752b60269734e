"""Source hosts.  ``git`` reads commits over the git protocol for every host kind."""
