"""uploads kept as tombstones: an index to expire them by state and age

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:00:00

Starting an upload writes nothing (its id carries its own signed state, see
services/upload_ids.py); an upload completed, cancelled or expired leaves its row as a
tombstone (state ``done``, ``cancelled`` or ``expired``) until its id would no longer
be accepted. The worker finds both the uploads to expire (``open``, ``completing``)
and the tombstones to forget by this index.
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_uploads_state_created_at'), ['state', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_uploads_state_created_at'))
    # a tombstone is no upload to the code before this revision
    op.execute("DELETE FROM uploads WHERE state NOT IN ('open', 'completing')")
