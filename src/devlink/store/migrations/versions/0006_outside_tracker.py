"""an outside tracker (Jira): its connection, a cache of its answers, e-mail aliases to its users, and what of
the development data was pushed to it

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
    op.create_table('dev_push_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.String(length=500), nullable=False),
    sa.Column('keys', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dev_push_items')),
    sa.UniqueConstraint('repository_id', 'entity_type', 'entity_id',
                        name=op.f('uq_dev_push_items_repository_id_entity_type_entity_id'))
    )
    op.create_table('dev_push_states',
    sa.Column('repository_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('repository_name', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('unknown_keys', sa.Text(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resends', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('repository_id', name=op.f('pk_dev_push_states'))
    )


def downgrade() -> None:
    op.drop_table('dev_push_states')
    op.drop_table('dev_push_items')
    op.drop_table('tracker_aliases')
    op.drop_table('tracker_cache')
    op.drop_table('tracker_connections')
