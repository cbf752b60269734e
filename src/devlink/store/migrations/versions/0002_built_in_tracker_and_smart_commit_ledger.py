"""built-in tracker and smart-commit ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 20:44:45.802475
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tracker_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracker_users')),
    sa.UniqueConstraint('username', name=op.f('uq_tracker_users_username'))
    )
    op.create_table('workflows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflows')),
    sa.UniqueConstraint('name', name=op.f('uq_workflows_name'))
    )
    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('workflow_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_projects_workflow_id_workflows')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('key', name=op.f('uq_projects_key'))
    )
    op.create_table('user_aliases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['tracker_users.id'], name=op.f('fk_user_aliases_user_id_tracker_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_aliases')),
    sa.UniqueConstraint('email', name=op.f('uq_user_aliases_email'))
    )
    op.create_table('user_emails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['tracker_users.id'], name=op.f('fk_user_emails_user_id_tracker_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_emails')),
    sa.UniqueConstraint('user_id', 'email', name=op.f('uq_user_emails_user_id_email'))
    )
    with op.batch_alter_table('user_emails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_emails_email'), ['email'], unique=False)

    op.create_table('workflow_statuses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workflow_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_workflow_statuses_workflow_id_workflows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_statuses')),
    sa.UniqueConstraint('workflow_id', 'name', name=op.f('uq_workflow_statuses_workflow_id_name'))
    )
    op.create_table('workflow_transitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workflow_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('from_status', sa.String(length=100), nullable=False),
    sa.Column('to_status', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_workflow_transitions_workflow_id_workflows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_transitions')),
    sa.UniqueConstraint('workflow_id', 'name', 'from_status', name=op.f('uq_workflow_transitions_workflow_id_name_from_status'))
    )
    op.create_table('permissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('permission', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_permissions_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['tracker_users.id'], name=op.f('fk_permissions_user_id_tracker_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_permissions')),
    sa.UniqueConstraint('project_id', 'permission', 'user_id', name=op.f('uq_permissions_project_id_permission_user_id'))
    )
    op.create_table('tracker_issues',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=100), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['tracker_users.id'], name=op.f('fk_tracker_issues_assignee_id_tracker_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_tracker_issues_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reporter_id'], ['tracker_users.id'], name=op.f('fk_tracker_issues_reporter_id_tracker_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracker_issues')),
    sa.UniqueConstraint('key', name=op.f('uq_tracker_issues_key'))
    )
    op.create_table('smart_commit_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('commit_sha', sa.String(length=64), nullable=False),
    sa.Column('issue_key', sa.String(length=120), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=True),
    sa.Column('command', sa.String(length=100), nullable=False),
    sa.Column('args', sa.Text(), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('author_email', sa.String(length=320), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_smart_commit_runs_repository_id_repositories'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smart_commit_runs')),
    sa.UniqueConstraint('commit_sha', 'issue_key', 'position', name=op.f('uq_smart_commit_runs_commit_sha_issue_key_position'))
    )
    with op.batch_alter_table('smart_commit_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smart_commit_runs_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_smart_commit_runs_issue_key'), ['issue_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_smart_commit_runs_outcome'), ['outcome'], unique=False)

    op.create_table('status_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('transition', sa.String(length=100), nullable=False),
    sa.Column('from_status', sa.String(length=100), nullable=False),
    sa.Column('to_status', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['tracker_users.id'], name=op.f('fk_status_changes_author_id_tracker_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['issue_id'], ['tracker_issues.id'], name=op.f('fk_status_changes_issue_id_tracker_issues'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_changes'))
    )
    with op.batch_alter_table('status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_changes_issue_id'), ['issue_id'], unique=False)

    op.create_table('tracker_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['tracker_users.id'], name=op.f('fk_tracker_comments_author_id_tracker_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['issue_id'], ['tracker_issues.id'], name=op.f('fk_tracker_comments_issue_id_tracker_issues'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracker_comments'))
    )
    with op.batch_alter_table('tracker_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tracker_comments_issue_id'), ['issue_id'], unique=False)

    op.create_table('worklogs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('started', sa.DateTime(timezone=True), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['tracker_users.id'], name=op.f('fk_worklogs_author_id_tracker_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['issue_id'], ['tracker_issues.id'], name=op.f('fk_worklogs_issue_id_tracker_issues'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worklogs'))
    )
    with op.batch_alter_table('worklogs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worklogs_issue_id'), ['issue_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('worklogs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_worklogs_issue_id'))

    op.drop_table('worklogs')
    with op.batch_alter_table('tracker_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tracker_comments_issue_id'))

    op.drop_table('tracker_comments')
    with op.batch_alter_table('status_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_changes_issue_id'))

    op.drop_table('status_changes')
    with op.batch_alter_table('smart_commit_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smart_commit_runs_outcome'))
        batch_op.drop_index(batch_op.f('ix_smart_commit_runs_issue_key'))
        batch_op.drop_index(batch_op.f('ix_smart_commit_runs_created_at'))

    op.drop_table('smart_commit_runs')
    op.drop_table('tracker_issues')
    op.drop_table('permissions')
    op.drop_table('workflow_transitions')
    op.drop_table('workflow_statuses')
    with op.batch_alter_table('user_emails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_emails_email'))

    op.drop_table('user_emails')
    op.drop_table('user_aliases')
    op.drop_table('projects')
    op.drop_table('workflows')
    op.drop_table('tracker_users')
