"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 20:17:12.433473
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hosts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('web_url', sa.String(length=500), nullable=True),
    sa.Column('api_url', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hosts')),
    sa.UniqueConstraint('name', name=op.f('uq_hosts_name'))
    )
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('credential', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_accounts_host_id_hosts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('host_id', 'name', name=op.f('uq_accounts_host_id_name'))
    )
    op.create_table('repositories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('url_secret', sa.Text(), nullable=True),
    sa.Column('web_url', sa.String(length=500), nullable=True),
    sa.Column('linked', sa.Boolean(), nullable=False),
    sa.Column('smart_commits', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('hook_token_hash', sa.String(length=64), nullable=True),
    sa.Column('hook_token', sa.Text(), nullable=True),
    sa.Column('sync_state', sa.String(length=16), nullable=False),
    sa.Column('sync_pending', sa.Boolean(), nullable=False),
    sa.Column('sync_kind', sa.String(length=8), nullable=True),
    sa.Column('sync_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sync_finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sync_heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sync_progress', sa.Integer(), nullable=False),
    sa.Column('next_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('commits_indexed', sa.Integer(), nullable=False),
    sa.Column('last_error_reason', sa.String(length=32), nullable=True),
    sa.Column('last_error_message', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_repositories_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_repositories_host_id_hosts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repositories')),
    sa.UniqueConstraint('hook_token_hash', name=op.f('uq_repositories_hook_token_hash')),
    sa.UniqueConstraint('host_id', 'external_id', name=op.f('uq_repositories_host_id_external_id')),
    sa.UniqueConstraint('name', name=op.f('uq_repositories_name')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('repositories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repositories_next_sync_at'), ['next_sync_at'], unique=False)

    op.create_table('branches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('head_sha', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_branches_repository_id_repositories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_branches')),
    sa.UniqueConstraint('repository_id', 'name', name=op.f('uq_branches_repository_id_name'))
    )
    op.create_table('commits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('sha', sa.String(length=64), nullable=False),
    sa.Column('author_name', sa.String(length=500), nullable=False),
    sa.Column('author_email', sa.String(length=500), nullable=False),
    sa.Column('authored_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('author_tz', sa.Integer(), nullable=False),
    sa.Column('committer_name', sa.String(length=500), nullable=False),
    sa.Column('committer_email', sa.String(length=500), nullable=False),
    sa.Column('committed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('parent_count', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_seen_by', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_commits_repository_id_repositories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commits')),
    sa.UniqueConstraint('repository_id', 'sha', name=op.f('uq_commits_repository_id_sha'))
    )
    op.create_table('issue_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('project_key', sa.String(length=100), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_issue_links_repository_id_repositories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issue_links')),
    sa.UniqueConstraint('key', 'entity_type', 'entity_id', name=op.f('uq_issue_links_key_entity_type_entity_id'))
    )
    with op.batch_alter_table('issue_links', schema=None) as batch_op:
        batch_op.create_index('ix_issue_links_entity', ['entity_type', 'entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_issue_links_project_key'), ['project_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_issue_links_repository_id'), ['repository_id'], unique=False)

    op.create_table('pull_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('source_branch', sa.String(length=500), nullable=False),
    sa.Column('target_branch', sa.String(length=500), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=True),
    sa.Column('url', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('merged_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_pull_requests_repository_id_repositories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pull_requests')),
    sa.UniqueConstraint('repository_id', 'number', name=op.f('uq_pull_requests_repository_id_number'))
    )
    op.create_table('sync_cursors',
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_sync_cursors_repository_id_repositories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repository_id', 'entity_type', name=op.f('pk_sync_cursors'))
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host_kind', sa.String(length=32), nullable=False),
    sa.Column('delivery_id', sa.String(length=200), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_webhook_deliveries_repository_id_repositories'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('host_kind', 'delivery_id', name=op.f('uq_webhook_deliveries_host_kind_delivery_id'))
    )


def downgrade() -> None:
    op.drop_table('webhook_deliveries')
    op.drop_table('sync_cursors')
    op.drop_table('pull_requests')
    with op.batch_alter_table('issue_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issue_links_repository_id'))
        batch_op.drop_index(batch_op.f('ix_issue_links_project_key'))
        batch_op.drop_index('ix_issue_links_entity')

    op.drop_table('issue_links')
    op.drop_table('commits')
    op.drop_table('branches')
    with op.batch_alter_table('repositories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repositories_next_sync_at'))

    op.drop_table('repositories')
    op.drop_table('accounts')
    op.drop_table('hosts')
