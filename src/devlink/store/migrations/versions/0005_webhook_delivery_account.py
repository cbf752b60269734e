"""the account a webhook delivery is for, so a delivery without a repository survives a crash

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 03:30:00

An organisation's ``repository.created`` delivery names no linked repository;
without its account, the sweep that acts on deliveries left unprocessed by a
crash had nobody to discover.  Batch mode, because Alembic adds a foreign key
on SQLite only by copying the table (this one has no AUTOINCREMENT to lose).
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_webhook_deliveries_account_id', 'accounts', ['account_id'], ['id'],
                                    ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint('fk_webhook_deliveries_account_id', type_='foreignkey')
        batch_op.drop_column('account_id')
