"""Persistence: SQLAlchemy models, the two engines, migrations and the read queries."""
