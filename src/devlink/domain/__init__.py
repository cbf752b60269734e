"""Pure functions and value types. Nothing here does I/O or imports store, hosts or web."""
