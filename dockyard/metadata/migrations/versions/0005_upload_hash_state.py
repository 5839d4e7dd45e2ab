"""upload hash state, so any node can continue an upload

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 20:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hash_state', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_column('hash_state')
