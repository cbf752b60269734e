"""lock holders, per-entity errors and the API origin each credential belongs to

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:15:00

Plain ``ADD COLUMN`` (no batch mode): SQLite adds nullable columns in place, so the
repositories table keeps its AUTOINCREMENT.
"""

from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('repositories', sa.Column('sync_holder', sa.String(length=200), nullable=True))
    op.add_column('repositories', sa.Column('entity_errors', sa.Text(), nullable=True))
    op.add_column('accounts', sa.Column('api_origin', sa.String(length=500), nullable=True))
    # every account linked so far was linked against its host's API URL as it stands now
    connection = op.get_bind()
    hosts = sa.table('hosts', sa.column('id', sa.Integer), sa.column('api_url', sa.String))
    accounts = sa.table('accounts', sa.column('host_id', sa.Integer), sa.column('api_origin', sa.String))
    for host_id, api_url in connection.execute(sa.select(hosts.c.id, hosts.c.api_url)).all():
        if not api_url:
            continue
        parts = urlsplit(api_url)
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        connection.execute(accounts.update().where(accounts.c.host_id == host_id).values(api_origin=origin))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('api_origin')
    op.drop_column('repositories', 'entity_errors')
    op.drop_column('repositories', 'sync_holder')
