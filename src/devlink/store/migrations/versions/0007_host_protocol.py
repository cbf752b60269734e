"""every host behind one protocol: full paths, refresh tokens, a host kind's own options

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 11:00:00

A repository keeps its full path on the host (GitLab nests groups: a path has
any depth), filled for existing rows from the last two segments of their name,
which is what GitHub gave.  An account keeps an OAuth refresh token, when its
token expires, and who is refreshing it (so two workers never spend one
rotating refresh token).  GitHub's own columns (the App's id, key and webhook
secret on the host, the installation on the account) move into each row's JSON
``options``, values unchanged (secrets stay the Fernet tokens they were).
Repositories get plain ``ADD COLUMN`` so SQLite keeps their AUTOINCREMENT.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_HOST_OPTIONS = ('app_id', 'app_private_key', 'app_webhook_secret')


def upgrade() -> None:
    op.add_column('repositories', sa.Column('host_path', sa.String(length=1000), nullable=True))
    op.add_column('hosts', sa.Column('options', sa.Text(), nullable=True))
    op.add_column('accounts', sa.Column('options', sa.Text(), nullable=True))
    op.add_column('accounts', sa.Column('refresh_token', sa.Text(), nullable=True))
    op.add_column('accounts', sa.Column('token_expires_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('accounts', sa.Column('refresh_holder', sa.String(length=200), nullable=True))
    op.add_column('accounts', sa.Column('refresh_started_at', sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    for row_id, name in bind.execute(sa.text(
            "SELECT id, name FROM repositories WHERE account_id IS NOT NULL")).fetchall():
        bind.execute(sa.text("UPDATE repositories SET host_path = :path WHERE id = :id"),
                     {"path": "/".join(name.split("/")[-2:]), "id": row_id})
    for row in bind.execute(sa.text(
            "SELECT id, app_id, app_private_key, app_webhook_secret FROM hosts")).mappings().fetchall():
        options = {key: row[key] for key in _HOST_OPTIONS if row[key]}
        if options:
            bind.execute(sa.text("UPDATE hosts SET options = :options WHERE id = :id"),
                         {"options": json.dumps(options), "id": row["id"]})
    for row_id, installation in bind.execute(sa.text(
            "SELECT id, installation_id FROM accounts WHERE installation_id IS NOT NULL")).fetchall():
        bind.execute(sa.text("UPDATE accounts SET options = :options WHERE id = :id"),
                     {"options": json.dumps({"installation_id": installation}), "id": row_id})
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        for column in _HOST_OPTIONS:
            batch_op.drop_column(column)
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('installation_id')


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('installation_id', sa.String(length=50), nullable=True))
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('app_id', sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column('app_private_key', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('app_webhook_secret', sa.Text(), nullable=True))
    bind = op.get_bind()
    for row_id, options in bind.execute(sa.text("SELECT id, options FROM hosts WHERE options IS NOT NULL")).fetchall():
        values = json.loads(options)
        bind.execute(sa.text("UPDATE hosts SET app_id = :a, app_private_key = :k, app_webhook_secret = :s "
                             "WHERE id = :id"), {"a": values.get('app_id'), "k": values.get('app_private_key'),
                                                 "s": values.get('app_webhook_secret'), "id": row_id})
    for row_id, options in bind.execute(sa.text(
            "SELECT id, options FROM accounts WHERE options IS NOT NULL")).fetchall():
        bind.execute(sa.text("UPDATE accounts SET installation_id = :i WHERE id = :id"),
                     {"i": json.loads(options).get('installation_id'), "id": row_id})
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        for column in ('refresh_started_at', 'refresh_holder', 'token_expires_at', 'refresh_token', 'options'):
            batch_op.drop_column(column)
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.drop_column('options')
    op.drop_column('repositories', 'host_path')
