"""an outside tracker (Jira): its connection, a cache of its answers, and e-mail aliases to its users

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:30:00

No existing row changes: without a ``tracker_connections`` row the built-in
tracker stays in use, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tracker_connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('deployment', sa.String(length=16), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('credential', sa.Text(), nullable=False),
    sa.Column('ca_bundle', sa.String(length=1000), nullable=True),
    sa.Column('proxy', sa.String(length=500), nullable=True),
    sa.Column('timeout', sa.Float(), nullable=True),
    sa.Column('server_title', sa.String(length=200), nullable=True),
    sa.Column('version', sa.String(length=50), nullable=True),
    sa.Column('user', sa.String(length=200), nullable=True),
    sa.Column('devinfo_client_id', sa.String(length=200), nullable=True),
    sa.Column('devinfo_client_secret', sa.Text(), nullable=True),
    sa.Column('gateway_url', sa.String(length=500), nullable=True),
    sa.Column('cloud_id', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracker_connections'))
    )
    op.create_table('tracker_cache',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_tracker_cache'))
    )
    op.create_table('tracker_aliases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracker_aliases')),
    sa.UniqueConstraint('email', name=op.f('uq_tracker_aliases_email'))
    )


def downgrade() -> None:
    op.drop_table('tracker_aliases')
    op.drop_table('tracker_cache')
    op.drop_table('tracker_connections')
